"""Engine behaviour: detector isolation, file-level errors, progress, timeouts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest

from antifake.config import AnalysisOptions, FrameSampling, Limits
from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.engine import Engine
from antifake.errors import AntifakeError, ErrorCode
from antifake.fusion import EvidenceFusion
from antifake.media.types import Media
from antifake.results import DetectorResult, GeneratorGuess
from synth import write_image, write_video


@register_detector("test_always_ai", default=False)
class AlwaysAI:
    name: ClassVar[str] = "test_always_ai"
    kind: ClassVar[str] = "forensic"
    media_types: ClassVar[frozenset[str]] = frozenset({"image", "video"})
    version: ClassVar[str] = "t1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        frames = list(media.frames(ctx.sampling))
        return DetectorResult(
            detector=self.name,
            score=0.9,
            kind="forensic",
            summary=f"{len(frames)} frames",
            generator=GeneratorGuess("pika", 0.7),
        )


@register_detector("test_buggy", default=False)
class Buggy(AlwaysAI):
    name: ClassVar[str] = "test_buggy"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        raise RuntimeError("bug in detector")


@register_detector("test_image_only", default=False)
class ImageOnly(AlwaysAI):
    name: ClassVar[str] = "test_image_only"
    media_types: ClassVar[frozenset[str]] = frozenset({"image"})


@register_detector("test_corrupt", default=False)
class SeesCorruption(AlwaysAI):
    name: ClassVar[str] = "test_corrupt"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        raise AntifakeError(ErrorCode.CORRUPT_MEDIA, "frame 3 is broken")


def test_buggy_detector_does_not_sink_the_others(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    result = Engine(detectors=["test_buggy", "test_always_ai"], fusion=EvidenceFusion()).analyze(
        img
    )
    assert result.ok
    by_name = {d.detector: d for d in result.detectors}
    assert by_name["test_buggy"].error is not None
    assert by_name["test_buggy"].error["code"] == "internal_error"
    assert by_name["test_always_ai"].score == pytest.approx(0.9)
    assert result.verdict == "ai_generated"
    assert result.generator is not None and result.generator.family == "pika"
    assert by_name["test_always_ai"].details["version"] == "t1"


def test_media_level_error_from_a_detector_fails_the_file(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    result = Engine(detectors=["test_always_ai", "test_corrupt"]).analyze(img)
    assert not result.ok
    assert result.error == {"code": "corrupt_media", "message": "frame 3 is broken"}
    assert result.verdict is None and result.ai_probability is None


def test_detectors_only_run_on_their_media_types(tmp_path: Path) -> None:
    vid = write_video(tmp_path / "v.mp4", frames=10)
    result = Engine(detectors=["test_image_only", "test_always_ai"]).analyze(vid)
    assert [d.detector for d in result.detectors] == ["test_always_ai"]
    assert result.media_type == "video"
    assert result.media is not None and result.media["format"] == "mp4"


def test_progress_callback_reports_each_step(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    seen: list[tuple[int, int, str]] = []
    Engine(detectors=["test_always_ai", "test_image_only"]).analyze(
        img, progress=lambda _f, step, total, label: seen.append((step, total, label))
    )
    assert seen == [(0, 2, "test_always_ai"), (1, 2, "test_image_only"), (2, 2, "fusion")]


def test_timeout_is_reported_as_error(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    opts = AnalysisOptions(limits=replace(Limits(), timeout_s=-1.0))
    result = Engine(detectors=["test_always_ai"], options=opts).analyze(img)
    assert result.error is not None and result.error["code"] == "timeout"


def test_result_serialises_to_json(tmp_path: Path) -> None:
    import json

    vid = write_video(tmp_path / "v.webm", container="webm", codec="libvpx-vp9")
    result = Engine(detectors=["test_always_ai"]).analyze(vid, display_name="upload.webm")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["file"] == "upload.webm"
    assert data["media"]["sha256"] and len(data["media"]["sha256"]) == 64
    assert data["engine_version"] and data["analyzed_at"].endswith("Z")


# ------------------------------------------------------------------ concurrent detectors


@register_detector("test_slow_corrupt", default=False)
class SlowCorrupt(AlwaysAI):
    """Sees corruption only after a while: an earlier detector's failure must win."""

    name: ClassVar[str] = "test_slow_corrupt"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        import time

        time.sleep(0.05)
        raise AntifakeError(ErrorCode.CORRUPT_MEDIA, "slow one saw it")


@register_detector("test_records_end", default=False)
class RecordsEnd(AlwaysAI):
    name: ClassVar[str] = "test_records_end"
    finished: ClassVar[list[str]] = []

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        import time

        time.sleep(0.1)
        RecordsEnd.finished.append(str(media.path))
        return super().analyze(media, ctx)


def _comparable(result: object) -> list[tuple[str, object, str, object]]:
    return [(d.detector, d.score, d.summary, d.details.get("frames_checked"))
            for d in result.detectors]  # type: ignore[attr-defined]


def test_concurrent_detectors_give_the_sequential_results(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.jpg", width=320, height=256)
    vid = write_video(tmp_path / "v.mp4", frames=24, width=128, height=96)
    sequential, concurrent = Engine(detector_threads=1), Engine(detector_threads=3)
    for path in (img, vid):
        one, many = sequential.analyze(path), concurrent.analyze(path)
        assert one.ok and many.ok
        assert _comparable(many) == _comparable(one)
        assert (many.verdict, many.ai_probability) == (one.verdict, one.ai_probability)
        assert [d.detector for d in many.detectors] == [d.detector for d in one.detectors]


def test_concurrent_failure_is_the_first_in_detector_order_and_nothing_outlives_it(
        tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    RecordsEnd.finished.clear()
    engine = Engine(detectors=["test_records_end", "test_corrupt", "test_slow_corrupt"],
                    detector_threads=3)
    result = engine.analyze(img)
    assert result.error == {"code": "corrupt_media", "message": "frame 3 is broken"}
    # The slow detector that was already running finished before analyze returned.
    assert RecordsEnd.finished == [str(img)]


def test_concurrent_analyses_leave_the_warning_filters_alone(tmp_path: Path) -> None:
    import warnings

    img = write_image(tmp_path / "a.png")
    before = list(warnings.filters)
    engine = Engine(detectors=["test_always_ai", "test_image_only", "test_records_end"],
                    detector_threads=3)
    for _ in range(5):
        assert engine.analyze(img).ok
    assert warnings.filters == before


def test_concurrent_progress_and_timeout_match_the_sequential_ones(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    seen: list[tuple[int, int, str]] = []
    Engine(detectors=["test_records_end", "test_image_only"], detector_threads=2).analyze(
        img, progress=lambda _f, step, total, label: seen.append((step, total, label))
    )
    assert seen == [(0, 2, "test_records_end"), (1, 2, "test_image_only"), (2, 2, "fusion")]
    opts = AnalysisOptions(limits=replace(Limits(), timeout_s=-1.0))
    result = Engine(detectors=["test_always_ai", "test_image_only"], options=opts,
                    detector_threads=2).analyze(img)
    assert result.error is not None and result.error["code"] == "timeout"
    assert "before test_always_ai" in result.error["message"]


def test_detector_threads_that_cannot_start_fall_back_to_one_after_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    img = write_image(tmp_path / "a.png")
    real_start = threading.Thread.start
    started: list[str] = []

    def start(self: threading.Thread) -> None:
        # What a process under RLIMIT_AS without room for another thread stack sees.
        if self.name.startswith("antifake-detector") and started:
            raise RuntimeError("can't start new thread")
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    engine = Engine(detectors=["test_always_ai", "test_image_only"], detector_threads=2)
    assert len(started) == 1  # the second thread failed while the pool was being made
    seen: list[str] = []
    result = engine.analyze(img, progress=lambda _f, _s, _t, label: seen.append(label))
    assert result.ok, result.error
    assert [d.detector for d in result.detectors] == ["test_always_ai", "test_image_only"]
    assert seen == ["test_always_ai", "test_image_only", "fusion"]
    assert engine.analyze(img).ok  # and it stays usable


def test_concurrent_detectors_share_out_the_cpus(tmp_path: Path) -> None:
    from antifake.engine import usable_cpus

    img = write_image(tmp_path / "a.png")
    budgets: dict[str, int | None] = {}

    class Spy:
        name = "spy"
        kind = "forensic"
        media_types = frozenset({"image"})
        version = "1"

        def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
            budgets[str(len(budgets))] = ctx.cpu_threads
            return DetectorResult(detector=self.name, score=None)

    for threads, want in ((1, None), (2, max(1, usable_cpus() // 2))):
        engine = Engine(detectors=["test_image_only"], detector_threads=threads)
        engine.detectors = [Spy(), Spy()]  # type: ignore[list-item]
        budgets.clear()
        assert engine.analyze(img).ok
        assert set(budgets.values()) == {want}


def test_error_messages_name_the_client_file_not_the_server_path(tmp_path: Path) -> None:
    """Issue 11 item 11: the service passes the client's name; stored paths stay private."""
    from antifake.engine import Engine

    stored = tmp_path / "uploads" / "a5"
    stored.mkdir(parents=True)
    empty = stored / "a503deadbeef.bin"
    empty.write_bytes(b"")
    junk = stored / "detect-1234.bin"
    junk.write_bytes(b"\x00\x01not an image at all" * 20)
    engine = Engine()
    for path in (empty, junk):
        result = engine.analyze(path, display_name="holiday.jpg")
        assert result.error is not None
        assert str(tmp_path) not in result.error["message"], result.error
        assert "uploads" not in result.error["message"]
    assert "holiday.jpg" in engine.analyze(empty, display_name="holiday.jpg").error["message"]


def test_heatmaps_are_bounded_to_1024_px() -> None:
    """Issue 11 item 3: a tiny file declaring a huge size must not yield a huge heatmap."""
    import numpy as np

    from antifake.engine import MAX_HEATMAP_SIDE, bound_heatmap

    big = np.zeros((3000, 4100), dtype=np.float64)
    big[:1500] = 1.0
    small = bound_heatmap(big)
    assert small.dtype == np.float32 and max(small.shape) <= MAX_HEATMAP_SIDE
    assert small.shape[0] * 4100 // 3000 - 2 <= small.shape[1]  # aspect kept
    assert abs(float(small.mean()) - 0.5) < 0.01  # block means keep the regions
    same = np.random.default_rng(0).random((64, 48)).astype(np.float32)
    assert np.array_equal(bound_heatmap(same), same)  # small maps untouched


def test_engine_bounds_a_detectors_heatmap(tmp_path: Path) -> None:
    import numpy as np

    @register_detector("test_huge_heat", default=False)
    class HugeHeat:
        name: ClassVar[str] = "test_huge_heat"
        kind = "splicing"
        media_types = frozenset({"image"})
        version: ClassVar[str] = "1"

        def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
            return DetectorResult(detector=self.name, score=0.5, summary="x", kind="splicing",
                                  heatmap=np.ones((5000, 2000), dtype=np.float32))

    img = write_image(tmp_path / "a.png")
    result = Engine(detectors=["test_huge_heat"]).analyze(img)
    heat = result.heatmaps()["test_huge_heat"]
    assert max(heat.shape) <= 1024 and heat.shape[0] > heat.shape[1]


def test_video_progress_moves_with_frames_not_only_detectors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10: a long video sat at 0/1 while a detector decoded it. Progress now counts
    the frames detectors decode: it moves inside a detector, never goes backwards, says
    which frame, and ends at total/total with fusion."""
    import antifake.progress as progress_module

    monkeypatch.setattr(progress_module, "MIN_INTERVAL_S", 0.0)  # report every frame
    vid = write_video(tmp_path / "v.mp4", frames=48, fps=12, width=96, height=64)
    seen: list[tuple[int, int, str]] = []
    opts = AnalysisOptions(sampling=FrameSampling(mode="all", max_frames=None))
    Engine(detectors=["forensic_image", "c2pa"], options=opts, detector_threads=1).analyze(
        vid, progress=lambda _f, step, total, label: seen.append((step, total, label)))
    steps = [s for s, _, _ in seen]
    total = seen[0][1]
    assert total == 2 * 48  # two detectors x 48 frames expected
    assert steps == sorted(steps) and seen[-1] == (total, total, "fusion")
    framewise = [label for _, _, label in seen if "frame" in label]
    assert len(framewise) >= 10  # moved inside forensic_image's pass
    assert any(label.startswith("forensic_image \u00b7 frame ") for label in framewise)
    assert all(s < total for s, _, label in seen if label != "fusion")


def test_frames_analysed_per_file_are_capped_and_spread(tmp_path: Path) -> None:
    """Issue 11 item 5: sampling=all on a long video is bounded by max_frames_analysed
    (the service's max_frames_per_request); the allowed frames cover the whole clip."""
    vid = write_video(tmp_path / "v.mp4", frames=48, fps=12, width=96, height=64)
    opts = AnalysisOptions(sampling=FrameSampling(mode="all", max_frames=None),
                           limits=replace(Limits(), max_frames_analysed=6))
    result = Engine(detectors=["forensic_image"], options=opts).analyze(vid)
    det = result.detectors[0]
    assert det.timeline is not None and len(det.timeline) == 6
    times = det.timeline_times_s or []
    assert times[0] < 0.5 and times[-1] > 3.0  # spread over the 4 s, not the first 0.5 s
    uncapped = Engine(detectors=["forensic_image"], options=replace(
        opts, limits=Limits())).analyze(vid)
    assert len(uncapped.detectors[0].timeline or []) > 6


def test_service_limits_carry_the_frame_cap(tmp_path: Path) -> None:
    from antifake.service.settings import ServiceSettings

    s = ServiceSettings(data_dir=tmp_path, max_frames_per_request=100)
    assert s.limits().max_frames_analysed == 100
    assert ServiceSettings.from_env(
        {"ANTIFAKE_MAX_FRAMES_PER_REQUEST": "50"}, data_dir=tmp_path).limits(
    ).max_frames_analysed == 50
