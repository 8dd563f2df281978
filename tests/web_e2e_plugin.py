"""Test-only detectors for the web end-to-end test (loaded via ``plugin_modules``).

No built-in detector produces a heatmap or a per-frame timeline for a tiny synthetic
clip, yet the page's overlay and chart must be exercised end to end. These two detectors
compute real (if meaningless for forensics) maps and scores from the decoded pixels, so
the whole path - worker -> stored heatmap -> API -> PNG -> page - is the production one.
They register with ``default=False`` and are only ever enabled by tests.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.media.types import Media, MediaType
from antifake.results import DetectorKind, DetectorResult, GeneratorGuess


def _redness(rgb: np.ndarray) -> np.ndarray:
    """HxW in [0, 1]: how much redder than green/blue each pixel is."""
    f = rgb.astype(np.float32) / 255.0
    return np.clip(f[..., 0] - 0.5 * (f[..., 1] + f[..., 2]), 0.0, 1.0)


@register_detector("e2e_heatmap", default=False, description="test-only: red-region map")
class RednessHeatmapDetector:
    """Heatmap = per-pixel redness of the reddest sampled frame; timeline = mean redness."""

    name: ClassVar[str] = "e2e_heatmap"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "e2e-test-1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        times: list[float] = []
        scores: list[float] = []
        best: tuple[float, float, np.ndarray] | None = None
        for frame in media.frames(ctx.sampling):
            red = _redness(frame.rgb)
            # mean redness of the clip's frames is ~0.1; map it into a readable score range
            score = float(min(1.0, 0.4 + 3.0 * red.mean()))
            times.append(frame.time_s)
            scores.append(score)
            if best is None or score > best[0]:
                best = (score, frame.time_s, red)
        assert best is not None
        # A soft halo around the red region, so the overlay shows the whole colour scale.
        red = best[2]
        sigma = max(2.0, 0.08 * max(red.shape))
        blurred = cv2.GaussianBlur(red, (0, 0), sigmaX=sigma)
        heat = np.asarray(blurred, dtype=np.float32) / max(1e-6, float(blurred.max()))
        video = media.info.media_type == "video"
        # 0.99: clearly above every AI line of the shipped calibration, including the
        # strict per-format ones (the <=256 px image line is ~0.95), so the page shows an
        # "AI-generated" verdict whatever the calibration's next refit moves.
        return DetectorResult(
            detector=self.name, score=0.99, kind=self.kind,
            summary="test detector: red regions flagged",
            evidence=[f"reddest frame at {best[1]:.2f} s", "<b>not bold</b> (escaped?)"],
            details={"heatmap_frame_time_s": best[1]},
            generator=GeneratorGuess("diffusion", 0.8, name="Test Diffusion"),
            heatmap=heat.astype(np.float32),
            timeline=scores if video else None,
            timeline_times_s=times if video else None,
        )


@register_detector("e2e_temporal", default=False, description="test-only: frame differences")
class FrameDifferenceDetector:
    """Timeline = normalised mean absolute difference to the previous sampled frame."""

    name: ClassVar[str] = "e2e_temporal"
    kind: ClassVar[DetectorKind] = "temporal"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"video"})
    version: ClassVar[str] = "e2e-test-1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        times: list[float] = []
        scores: list[float] = []
        prev: np.ndarray | None = None
        for frame in media.frames(ctx.sampling):
            cur = frame.rgb.astype(np.float32)
            diff = 0.0 if prev is None else float(np.abs(cur - prev).mean()) / 32.0
            times.append(frame.time_s)
            scores.append(float(min(1.0, 0.2 + diff)))
            prev = cur
        return DetectorResult(
            detector=self.name, score=0.7, kind=self.kind,
            summary="test detector: frame-to-frame change",
            timeline=scores, timeline_times_s=times,
        )
