"""Speed-ups that must not change results: splicing's exact fast path, seeking in video."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from antifake.config import FrameSampling
from antifake.detectors.splicing import features
from antifake.media import open_media
from antifake.media import video as media_video
from synth import write_video


def test_splicing_fast_path_equals_masked_window_statistics() -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (200, 264)).astype(np.float32)
    rows, cols = 200 // features.CELL, 264 // features.CELL
    k3 = np.abs(np.diff(grey, n=3, axis=1, append=grey[:, -3:])).clip(0, 2040)
    r3 = np.round(k3) / 2  # half-integers, like the real residual
    fast = features._low_means_exact((r3 * 2).astype(np.int16), rows, cols, (0.5, 0.2))
    slow = [features._low_mean(features._windows(r3, rows, cols), f) for f in (0.5, 0.2)]
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    d = np.abs(np.diff(grey, axis=1, append=grey[:, -1:]))
    on = np.zeros_like(grey)
    on[:, 7::8] = 1.0
    w = features._windows
    num = w(d * on, rows, cols).sum(-1) / (w(on, rows, cols).sum(-1) + 1e-6)
    den = w(d * (1 - on), rows, cols).sum(-1) / (w(1 - on, rows, cols).sum(-1) + 1e-6)
    assert np.array_equal(features._grid_ratio_exact(d, 1, rows, cols),
                          np.log((num + 0.5) / (den + 0.5)))


def test_video_seeking_keeps_the_same_frames(tmp_path: Path, monkeypatch: object) -> None:
    clip = write_video(tmp_path / "v.mp4", frames=96, width=64, height=48, fps=12)
    sampling = FrameSampling(mode="fps", fps=2, max_frames=4)  # targets ~2.6 s apart

    def frames() -> list[tuple[int, float, int]]:
        return [(f.index, round(f.time_s, 4), int(f.rgb.sum()))
                for f in open_media(clip).frames(sampling)]

    linear = frames()
    monkeypatch.setattr(media_video, "SEEK_MIN_GAP_S", 0.5)  # type: ignore[attr-defined]
    assert frames() == linear
    assert len(linear) == 4
