"""The synthetic_speech front end: mono 16 kHz audio -> log linear-filterbank windows.

Shared by training (:mod:`antifake.training.audio`) and inference, in numpy only, so the
model sees exactly the features it was trained on. Choices and why:

- *Linear* frequency bands (LFCC-style, not mel): vocoder and codec artefacts of synthetic
  speech sit in the upper bands that a mel scale compresses (ASVspoof baselines).
- Leading and trailing silence is trimmed and a fixed low noise floor added before the
  log: TTS demo outputs often start and end in exact digital zeros while recordings have
  room noise, a shortcut that teaches nothing about voices (known from ASVspoof 2019).
- Each window's level is normalised (mean log energy subtracted): loudness says nothing
  about the voice's origin.
- Fixed 2 s windows, 1 s apart, give the per-second timeline; a clip shorter than a
  window is repeated to fill it (the usual ASVspoof padding).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 512
WIN_LENGTH = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms
N_BANDS = 80  # linear triangular bands over 0-8 kHz (100 Hz apart)
WINDOW_S = 2.0
HOP_S = 1.0
WINDOW_SAMPLES = int(WINDOW_S * SAMPLE_RATE)
HOP_SAMPLES = int(HOP_S * SAMPLE_RATE)
N_FRAMES = 1 + (WINDOW_SAMPLES - WIN_LENGTH) // HOP_LENGTH  # 198
SILENCE_DB = -45.0  # frames this far below the clip's loudest are silence at the ends
NOISE_FLOOR = 1e-4  # about -80 dBFS: added to every sample, a fixed seed (deterministic)
MIN_SPEECH_S = 0.3  # less sound than this is no speech to judge


@lru_cache(maxsize=4)
def linear_filterbank(n_bands: int = N_BANDS) -> np.ndarray:
    """(N_FFT//2+1, n_bands) triangular filters, equally spaced on a linear Hz scale."""
    n_bins = N_FFT // 2 + 1
    bins = np.linspace(0, SAMPLE_RATE / 2, n_bins)
    edges = np.linspace(0, SAMPLE_RATE / 2, n_bands + 2)
    fb = np.zeros((n_bins, n_bands), np.float32)
    for b in range(n_bands):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        up = (bins - lo) / (mid - lo)
        down = (hi - bins) / (hi - mid)
        fb[:, b] = np.maximum(0.0, np.minimum(up, down))
    return fb


_WINDOW = np.hanning(WIN_LENGTH + 1)[:-1].astype(np.float32)
_noise = np.random.default_rng(20261202).standard_normal(SAMPLE_RATE).astype(np.float32)


def add_noise_floor(wave: np.ndarray) -> np.ndarray:
    """``wave`` plus the fixed low noise floor (a tiled deterministic sequence)."""
    reps = -(-wave.size // _noise.size)
    return wave + NOISE_FLOOR * np.tile(_noise, max(1, reps))[: wave.size]


def trim_silence(wave: np.ndarray) -> np.ndarray:
    """``wave`` without leading/trailing stretches quieter than SILENCE_DB below its peak
    (measured on 10 ms frames); unchanged when it is all quiet."""
    if wave.size < HOP_LENGTH:
        return wave
    n = wave.size // HOP_LENGTH
    frames = wave[: n * HOP_LENGTH].reshape(n, HOP_LENGTH)
    energy = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / HOP_LENGTH
    db = 10 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(db > db.max() - abs(SILENCE_DB))
    if loud.size == 0 or db.max() < -70:
        return wave
    start = max(0, (loud[0] - 2) * HOP_LENGTH)
    end = min(wave.size, (loud[-1] + 3) * HOP_LENGTH)
    return wave[start:end]


def stft(wave: np.ndarray) -> np.ndarray:
    """(frames, N_FFT//2+1) complex spectra of ``wave`` (16 kHz mono float): 25 ms Hann
    windows every 10 ms; a wave shorter than one window is zero-padded to it."""
    if wave.size < WIN_LENGTH:
        wave = np.pad(wave, (0, WIN_LENGTH - wave.size))
    n = 1 + (wave.size - WIN_LENGTH) // HOP_LENGTH
    idx = np.arange(WIN_LENGTH)[None, :] + HOP_LENGTH * np.arange(n)[:, None]
    return np.fft.rfft(wave[idx] * _WINDOW, n=N_FFT, axis=1)


def log_filterbank(wave: np.ndarray, n_bands: int = N_BANDS) -> np.ndarray:
    """(frames, n_bands) float32 log energies of ``wave`` (16 kHz mono float)."""
    power = np.abs(stft(wave)) ** 2
    return np.log(power.astype(np.float32) @ linear_filterbank(n_bands)
                  + 1e-10).astype(np.float32)


def normalise(feats: np.ndarray, per_band: bool = False) -> np.ndarray:
    """Level normalisation of one window's log energies: minus their mean (``per_band``:
    minus each band's mean over time, cepstral-mean-style, which also removes a stationary
    channel response)."""
    return feats - (feats.mean(axis=0, keepdims=True) if per_band else feats.mean())


def window_features(window: np.ndarray, n_bands: int = N_BANDS,
                    per_band: bool = False) -> np.ndarray:
    """(N_FRAMES, n_bands) level-normalised features of one WINDOW_SAMPLES window."""
    return normalise(log_filterbank(window, n_bands)[:N_FRAMES], per_band)


def fill_window(wave: np.ndarray) -> np.ndarray:
    """``wave`` repeated (or cut) to exactly WINDOW_SAMPLES."""
    if wave.size >= WINDOW_SAMPLES:
        return wave[:WINDOW_SAMPLES]
    reps = -(-WINDOW_SAMPLES // max(1, wave.size))
    return np.tile(wave, reps)[:WINDOW_SAMPLES]


def mean_softmax(logits: np.ndarray) -> np.ndarray:
    """Mean over rows of the softmax of ``(n, k)`` logits (float64): the clip's family
    probabilities from its windows' family logits."""
    lg = np.asarray(logits, np.float64)
    e = np.exp(lg - lg.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).mean(axis=0)


def prepare(wave: np.ndarray, max_samples: int | None = None) -> np.ndarray:
    """The whole-clip preprocessing before windowing: trim end silences, add the floor.
    ``max_samples``: only the first that many samples of the result (the same values as
    ``prepare(wave)[:max_samples]``, without a full-length copy of a long clip)."""
    trimmed = trim_silence(np.asarray(wave, np.float32))
    return add_noise_floor(trimmed if max_samples is None else trimmed[:max_samples])


def windows_of(wave: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """(start second, window samples) of a prepared clip: 2 s windows 1 s apart covering
    it (the last one ends at the clip's end); one repeated window for a short clip."""
    if wave.size <= WINDOW_SAMPLES:
        return [(0.0, fill_window(wave))]
    starts = list(range(0, wave.size - WINDOW_SAMPLES + 1, HOP_SAMPLES))
    if starts[-1] + WINDOW_SAMPLES < wave.size:
        starts.append(wave.size - WINDOW_SAMPLES)
    return [(s / SAMPLE_RATE, wave[s:s + WINDOW_SAMPLES]) for s in starts]


def iter_window_batches(wave: np.ndarray, n_bands: int = N_BANDS, batch: int = 32,
                        per_band: bool = False) -> Iterator[tuple[list[float], np.ndarray]]:
    """(window start seconds, (k, N_FRAMES, n_bands) features) for at most ``batch``
    windows at a time of a prepared clip: the same windows and values as
    :func:`windows_of` + :func:`window_features`. Each batch's windows are consecutive and
    overlap by half, so their filterbank is computed once over the span they cover; memory
    is bounded by the batch, not the clip (a 10-minute clip's whole STFT took ~700 MB)."""
    wins = windows_of(wave)
    if len(wins) == 1:
        yield [wins[0][0]], window_features(wins[0][1], n_bands, per_band)[None]
        return
    for b0 in range(0, len(wins), batch):
        group = wins[b0:b0 + batch]
        starts = [int(round(st * SAMPLE_RATE)) for st, _ in group]
        aligned = [st for st in starts if st % HOP_LENGTH == 0]
        span = (log_filterbank(wave[aligned[0]:aligned[-1] + WINDOW_SAMPLES], n_bands)
                if aligned else None)
        out = []
        for (_, win), st in zip(group, starts, strict=True):
            if span is not None and st % HOP_LENGTH == 0:
                f0 = (st - aligned[0]) // HOP_LENGTH
                feats = span[f0:f0 + N_FRAMES]
                if feats.shape[0] == N_FRAMES:
                    out.append(normalise(feats, per_band))
                    continue
            out.append(window_features(win, n_bands, per_band))  # end-aligned last window
        yield [st_s for st_s, _ in group], np.stack(out)


def clip_windows_features(wave: np.ndarray, n_bands: int = N_BANDS,
                          per_band: bool = False) -> tuple[list[float], np.ndarray]:
    """All windows of a (short) prepared clip at once: see :func:`iter_window_batches`."""
    starts: list[float] = []
    feats = []
    for st, f in iter_window_batches(wave, n_bands, per_band=per_band):
        starts += st
        feats.append(f)
    return starts, np.concatenate(feats)
