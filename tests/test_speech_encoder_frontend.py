"""The numpy front end of the voice-encoder benchmark (bench/eval_speech_encoder.py)."""

import numpy as np

from antifake.training.speech_encoder import (
    N_MELS,
    PARTIAL_FRAMES,
    mel_filterbank,
    mel_frames,
    normalize_volume,
    partials,
)


def test_mel_filters_cover_the_band_in_order() -> None:
    fb = mel_filterbank()
    assert fb.shape == (201, N_MELS)
    peaks = fb.argmax(axis=0)
    assert np.all(np.diff(peaks) >= 0) and peaks[-1] > peaks[0]
    assert np.all(fb >= 0) and np.all(fb.max(axis=0) > 0)


def test_a_tone_lights_the_band_holding_its_frequency() -> None:
    t = np.arange(16_000) / 16_000
    low = mel_frames(np.sin(2 * np.pi * 300 * t).astype(np.float32)).mean(axis=0)
    high = mel_frames(np.sin(2 * np.pi * 4000 * t).astype(np.float32)).mean(axis=0)
    assert low.argmax() < high.argmax()
    assert mel_frames(np.zeros(16_000, np.float32)).shape == (101, N_MELS)


def test_quiet_audio_is_raised_loud_audio_left_alone() -> None:
    quiet = np.full(1000, 0.001, np.float32)
    raised = normalize_volume(quiet)
    assert abs(20 * np.log10(np.sqrt(np.mean(raised**2))) + 30) < 0.1
    loud = np.full(1000, 0.5, np.float32)
    assert normalize_volume(loud) is loud


def test_partials_fill_short_clips_and_bound_long_ones() -> None:
    short = np.ones((50, N_MELS), np.float32)
    assert partials(short).shape == (1, PARTIAL_FRAMES, N_MELS)
    long = np.arange(3000 * N_MELS, dtype=np.float32).reshape(3000, N_MELS)
    assert partials(long).shape[0] == 3000 // PARTIAL_FRAMES
    picked = partials(long, max_partials=4)
    assert picked.shape[0] == 4
    assert picked[0, 0, 0] == long[0, 0] and picked[-1, -1, 0] > long[2800, 0]
