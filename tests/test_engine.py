"""Engine behaviour: detector isolation, file-level errors, progress, timeouts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest

from antifake.config import AnalysisOptions, Limits
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
