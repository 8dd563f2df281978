"""Clip-level spectral and *phase* statistics of speech (exploration for issue 12).

The shipped speech CNN sees log-magnitude filterbanks only. Neural vocoders and
voice-conversion systems generate the phase of the waveform too, and anti-spoofing work
(modified group delay, instantaneous-frequency features) found phase regularities that
magnitude features miss. This module turns a 16 kHz clip into 7 x ``N_BANDS`` numbers
for a linear probe (``bench/eval_speech_encoder.py --features phase``), to measure
whether such statistics add anything to the CNN on held-out sources:

* per band, over time: std of the log energy (band mean removed) and of its frame-to-frame
  change (how much each band's envelope moves);
* per band: mean and std over time of the in-band spectral flatness (log of the geometric
  over the arithmetic mean of the bin powers: harmonic vs noise-like fine structure);
* per band, over active frames: circular variance (per bin, averaged over the band's bins)
  of the instantaneous-frequency deviation (phase advance between frames minus the bin's
  nominal advance), of its change between frames, and of the group delay (phase step
  between neighbouring bins).
"""

from __future__ import annotations

import numpy as np

from antifake.detectors.synthetic_speech.features import (
    HOP_LENGTH,
    N_FFT,
    SAMPLE_RATE,
    add_noise_floor,
    stft,
)

N_BANDS = 40
MAX_SECONDS = 30.0
N_FEATURES = 7 * N_BANDS


def _band_of_bins(n_bins: int) -> np.ndarray:
    """Band index of every FFT bin (DC dropped into band 0), equal-width bands."""
    return np.minimum((np.arange(n_bins) * N_BANDS) // n_bins, N_BANDS - 1)


def _per_band(values: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Mean over the last (bin) axis per band: ``(..., N_BANDS)``."""
    return np.stack([values[..., band == b].mean(axis=-1) for b in range(N_BANDS)], axis=-1)


def _circ_var(angles: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Per band, the mean over its bins of each bin's circular variance over frames
    (1 - |mean unit phasor|): 0 when a bin's angle is the same in every frame."""
    per_bin = 1.0 - np.abs(np.exp(1j * angles).mean(axis=0))
    return np.asarray([per_bin[band == b].mean() for b in range(N_BANDS)])


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def clip_statistics(wave: np.ndarray) -> np.ndarray:
    """``(N_FEATURES,)`` float32 statistics of a mono 16 kHz float clip (first 30 s)."""
    wave = np.asarray(wave[: int(MAX_SECONDS * SAMPLE_RATE)], dtype=np.float64)
    rms = float(np.sqrt(np.mean(wave ** 2))) if wave.size else 0.0
    wave = wave / rms if rms > 0 else wave
    # The CNN front end's fixed faint noise floor: digital silence has no phase.
    spec = stft(add_noise_floor(wave))
    power = np.abs(spec) ** 2 + 1e-10
    band = _band_of_bins(power.shape[1])
    band_energy = np.log(_per_band(power, band))
    centred = band_energy - band_energy.mean(axis=0)
    env_std = centred.std(axis=0)
    env_delta = np.diff(centred, axis=0).std(axis=0) if len(centred) > 1 else np.zeros(N_BANDS)
    logp = np.log(power)
    flat = _per_band(logp, band) - band_energy  # log(geometric mean / arithmetic mean)
    flat_mean, flat_std = flat.mean(axis=0), flat.std(axis=0)
    # Phase statistics on the frames carrying the speech (above the median frame energy).
    frame_energy = power.sum(axis=1)
    active = frame_energy >= np.median(frame_energy)
    phase = np.angle(spec)
    nominal = 2 * np.pi * np.arange(power.shape[1]) * HOP_LENGTH / N_FFT
    if len(phase) > 2:
        ifd = _wrap(np.diff(phase, axis=0) - nominal[None, :])
        ifd_active = ifd[active[1:]] if active[1:].any() else ifd
        ifd_var = _circ_var(ifd_active, band)
        d_ifd = _wrap(np.diff(ifd, axis=0))
        keep = active[2:] if active[2:].any() else np.ones(len(d_ifd), bool)
        d_ifd_var = _circ_var(d_ifd[keep], band)
    else:
        ifd_var = d_ifd_var = np.ones(N_BANDS)
    gd_var = _circ_var(_wrap(np.diff(phase[active], axis=1)), band[1:])
    return np.concatenate([env_std, env_delta, flat_mean, flat_std, ifd_var, d_ifd_var,
                           gd_var]).astype(np.float32)
