"""Test-only detectors and helpers for the service tests.

The service imports this module inside its analysis processes through the
``plugin_modules`` setting, so these detectors exist there too. None is a default detector.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.media.types import Media, MediaType
from antifake.results import DetectorKind, DetectorResult

PLUGIN = "service_support"


@register_detector("test_heat", default=False, description="test: fixed score + heatmap")
class HeatDetector:
    name: ClassVar[str] = "test_heat"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        frame = next(iter(media.frames(ctx.sampling)))
        h, w = frame.rgb.shape[:2]
        heat = np.zeros((h, w), dtype=np.float32)
        heat[: h // 2, : w // 2] = 1.0
        return DetectorResult(detector=self.name, score=0.9, summary="test evidence",
                              kind=self.kind, heatmap=heat)


@register_detector("test_crash", default=False, description="test: kills its process")
class CrashDetector:
    name: ClassVar[str] = "test_crash"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        os._exit(3)  # like a segfaulting decoder: no exception, the process is gone


@register_detector("test_hang", default=False, description="test: never returns")
class HangDetector:
    name: ClassVar[str] = "test_hang"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        time.sleep(3600)
        raise AssertionError("unreachable")


@register_detector("test_flaky", default=False, description="test: crashes on first attempt")
class FlakyDetector:
    """Kills its process the first time it sees a file, succeeds the second time."""

    name: ClassVar[str] = "test_flaky"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        marker = Path(str(media.path) + ".seen")
        if not marker.exists():
            marker.write_text("1")
            os._exit(4)
        return DetectorResult(detector=self.name, score=0.2, summary="second try",
                              kind=self.kind)


@register_detector("test_slow", default=False, description="test: sleeps 0.3 s")
class SlowDetector:
    name: ClassVar[str] = "test_slow"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        time.sleep(float(os.environ.get("ANTIFAKE_TEST_SLOW_S", "0.3")))
        return DetectorResult(detector=self.name, score=None, summary="slow", kind=self.kind)
