"""The spectral / phase statistics probed in bench/eval_speech_encoder.py --features phase."""

from __future__ import annotations

import numpy as np

from antifake.training.speech_stats import N_BANDS, N_FEATURES, SAMPLE_RATE, clip_statistics

IFD = slice(4 * N_BANDS, 5 * N_BANDS)  # circular variance of the instantaneous-frequency deviation
FLAT_MEAN = slice(2 * N_BANDS, 3 * N_BANDS)


def test_shape_and_finite_for_long_short_and_silent_clips() -> None:
    rng = np.random.default_rng(1)
    for wave in (rng.standard_normal(SAMPLE_RATE * 3), rng.standard_normal(100),
                 np.zeros(SAMPLE_RATE)):
        f = clip_statistics(wave.astype(np.float32))
        assert f.shape == (N_FEATURES,) and f.dtype == np.float32
        assert np.isfinite(f).all()


def test_a_steady_tone_has_coherent_phase_and_a_peaky_band_unlike_noise() -> None:
    t = np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
    freq = 1000.0
    tone = np.sin(2 * np.pi * freq * t)
    noise = np.random.default_rng(2).standard_normal(len(t))
    n_bins = 257
    band = (round(freq / (SAMPLE_RATE / 512)) * N_BANDS) // n_bins  # the band holding 1 kHz
    ft, fn = clip_statistics(tone), clip_statistics(noise)
    # Phase advances steadily for a tone, at random for noise.
    assert ft[IFD][band] < 0.2 < fn[IFD][band]
    # A tone is one peak in its band: far from flat, unlike noise.
    assert ft[FLAT_MEAN][band] < fn[FLAT_MEAN][band] - 1.0
