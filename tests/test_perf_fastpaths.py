"""Speed-ups that must not change results (splicing's exact fast path, seeking in video), and
the one that changes which frames are chosen, keyframe snapping of sparse video samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from antifake.config import FrameSampling
from antifake.detectors.base import AnalysisContext
from antifake.detectors.splicing import features
from antifake.detectors.temporal import features as temporal_features
from antifake.detectors.temporal.detector import (
    TemporalConsistencyDetector,
    plan_pairs,
    snap_groups_to_keyframes,
)
from antifake.media import open_media
from antifake.media import video as media_video
from synth import write_video, write_video_gop


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


# A 20 s clip (240 frames at 12 fps) whose default-like sparse samples are ~6.6 s apart,
# more than SNAP_MIN_SPACING_S: the long-clip case of the default fps=2,max=64 sampling.
SPARSE = FrameSampling(mode="fps", fps=2, max_frames=4)  # wanted 0, 6.64, 13.28, 19.92 s


def _by_index(clip: Path) -> dict[int, np.ndarray]:
    return {f.index: f.rgb for f in open_media(clip).frames(FrameSampling("all", max_frames=None))}


@pytest.mark.parametrize("container,suffix", [("mp4", "mp4"), ("matroska", "mkv")])
def test_sparse_fps_samples_snap_to_the_keyframe_before(tmp_path: Path, container: str,
                                                        suffix: str) -> None:
    clip = write_video_gop(tmp_path / f"g.{suffix}", frames=240, gop=25, fps=12,
                           container=container)
    frames = list(open_media(clip).frames(SPARSE))
    # Keyframes every 25 frames: the last one at or before each wanted time.
    assert [f.index for f in frames] == [0, 75, 150, 225]
    assert all(f.keyframe for f in frames)
    wanted = [19.917 * i / 3 for i in range(4)]
    spacing = wanted[1]
    for f, t in zip(frames, wanted, strict=True):
        assert t - spacing < f.time_s <= t + 1e-6  # the stated tolerance: one spacing early
    # The very pixels a full decode gives for those frames.
    full = _by_index(clip)
    for f in frames:
        assert np.array_equal(f.rgb, full[f.index])


def test_sparse_samples_without_a_keyframe_in_reach_stay_exact(tmp_path: Path) -> None:
    # Keyframes at 0, 8.33 and 16.67 s: the 6.64 s sample has none after the previous
    # wanted time (0 s), so it is decoded exactly; the others snap.
    clip = write_video_gop(tmp_path / "g.mp4", frames=240, gop=100, fps=12)
    frames = list(open_media(clip).frames(SPARSE))
    assert [f.index for f in frames] == [0, 80, 100, 200]
    assert [f.keyframe for f in frames] == [True, False, True, True]
    full = _by_index(clip)
    assert all(np.array_equal(f.rgb, full[f.index]) for f in frames)


def test_dense_fps_and_all_sampling_are_never_snapped(tmp_path: Path, monkeypatch: object) -> None:
    clip = write_video_gop(tmp_path / "g.mp4", frames=240, gop=25, fps=12)
    dense = list(open_media(clip).frames(FrameSampling(mode="fps", fps=0.5, max_frames=None)))
    assert [f.index for f in dense] == [24 * k for k in range(10)]  # every 2 s, exact
    spread = FrameSampling(mode="all", max_frames=4)
    with_seeking = [(f.index, int(f.rgb.sum())) for f in open_media(clip).frames(spread)]
    assert [i for i, _ in with_seeking] == [0, 80, 159, 239]  # exact spread, not keyframes
    monkeypatch.setattr(media_video, "SEEK_MIN_GAP_S", 1e9)  # type: ignore[attr-defined]
    assert [(f.index, int(f.rgb.sum())) for f in open_media(clip).frames(spread)] == with_seeking


def test_keyframes_mode_seeks_to_the_same_keyframes(tmp_path: Path, monkeypatch: object) -> None:
    clip = write_video_gop(tmp_path / "g.mp4", frames=240, gop=25, fps=12)
    sampling = FrameSampling(mode="keyframes", max_frames=3)  # wanted 0, 9.96, 19.92 s

    def frames() -> list[tuple[int, int]]:
        return [(f.index, int(f.rgb.sum())) for f in open_media(clip).frames(sampling)]

    monkeypatch.setattr(media_video, "SEEK_MIN_GAP_S", 1e9)  # type: ignore[attr-defined]
    decoded_through = frames()
    monkeypatch.setattr(media_video, "SEEK_MIN_GAP_S", 1.0)  # type: ignore[attr-defined]
    assert frames() == decoded_through
    assert [i for i, _ in decoded_through] == [0, 75, 200]


def test_keyframe_lookup_reads_the_seek_index(tmp_path: Path) -> None:
    clip = write_video_gop(tmp_path / "g.mp4", frames=240, gop=25, fps=12)
    found = temporal_features.keyframe_indices_at_or_before(clip, [0, 24, 25, 26, 130, 239])
    assert found == [0, 0, 25, 25, 125, 225]
    assert temporal_features.keyframe_indices_at_or_before(tmp_path / "missing.mp4", [3]) == [None]


def test_snap_groups_to_keyframes_rules() -> None:
    groups = [[1, 2, 3], [80, 81, 82], [160, 161, 162], [236, 237, 238]]
    snapped, used = snap_groups_to_keyframes(groups, [0, 75, 2, None])
    # 0 and 75 are taken (pairs start one frame after the keyframe); 2 is not after the
    # previous group; None stays exact.
    assert snapped == [[2, 3, 4], [77, 78, 79], [160, 161, 162], [236, 237, 238]]
    assert used == {0, 75}
    # A keyframe whose moved group would run into the next group is not used.
    assert snap_groups_to_keyframes([[10, 11, 12], [14, 15, 16]], [None, 11])[0] == [
        [10, 11, 12], [14, 15, 16]]


def test_seeking_to_known_keyframes_decodes_the_same_pairs(tmp_path: Path) -> None:
    clip = write_video_gop(tmp_path / "g.mp4", frames=240, gop=25, fps=12)
    wanted = {77, 78, 79, 152, 153, 154, 227, 228}

    def pairs(keyframes: set[int]) -> list[tuple[int, float, float]]:
        return [(p.index, float(p.prev.sum()), float(p.cur.sum()))
                for p in temporal_features.iter_frame_pairs(clip, wanted, keyframes=keyframes)]

    assert pairs({75, 150, 225}) == pairs(set())


def test_temporal_bursts_of_a_sparse_clip_follow_keyframes(tmp_path: Path) -> None:
    clip = write_video_gop(tmp_path / "g.mp4", frames=240, gop=25, fps=12)
    groups = plan_pairs(240, 12.0, SPARSE, 3, 192)
    assert [g[0] for g in groups] == [1, 79, 157, 235]
    res = TemporalConsistencyDetector().analyze(open_media(clip), AnalysisContext(sampling=SPARSE))
    assert res.details["pairs"] == 12
    assert res.details["bursts_at_keyframes"] == 4  # keyframes 0, 75, 150, 225
    assert res.timeline_times_s == pytest.approx([2 / 12, 77 / 12, 152 / 12, 227 / 12],
                                                 abs=1e-3)
