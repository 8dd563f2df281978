"""Splicing detector: a region whose noise statistics disagree with the rest of the frame."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from antifake.config import FrameSampling
from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.detectors.splicing.features import (
    Region,
    blas_controller,
    heatmap_from_map,
    robust_outlier_map,
    strongest_region,
    to_grey,
)
from antifake.media.types import Media, MediaType
from antifake.results import DetectorKind, DetectorResult

VIDEO_FRAMES = 4  # keyframes analysed per video

# What the heatmap shows, for captions (web page, reports): said by the detector, once.
HEATMAP_MEANING = ("local noise inconsistency; warm areas have noise unlike the rest of the "
                   "picture (a localisation aid for edits, not an AI detector: it does not "
                   "vote)")


def load_calibration() -> dict[str, Any]:
    """``calibration.json``: region-evidence thresholds measured by ``calibrate.py``."""
    text = resources.files("antifake.detectors.splicing").joinpath("calibration.json")
    return dict(json.loads(text.read_text("utf-8")))


def evidence_to_score(strength: float, cal: dict[str, Any]) -> float:
    """Map region evidence to a score in [0.5, 0.95].

    0.5 means "no compact inconsistent region": a consistent frame is *not* evidence of
    authenticity (a fully generated image is consistent too), so it must not pull the
    fused verdict towards "authentic". ``low`` is the 95th percentile of the evidence on
    untouched real media, ``high`` the 99.5th; scores rise linearly between them.
    """
    low, high = float(cal["low"]), float(cal["high"])
    t = (strength - low) / max(1e-6, high - low)
    return 0.5 + 0.45 * float(np.clip(t, 0.0, 1.0))


@register_detector("splicing", description="Local noise inconsistency (splicing) heatmap")
class SplicingDetector:
    """Splicebuster-style local noise-inconsistency map for images and video keyframes."""

    name: ClassVar[str] = "splicing"
    kind: ClassVar[DetectorKind] = "splicing"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "0.1.0"

    def __init__(self, video_frames: int = VIDEO_FRAMES) -> None:
        self.video_frames = max(1, int(video_frames))
        self.cal = load_calibration()
        blas_controller()  # now, not on a detector thread (see blas_controller)

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        if media.info.media_type == "video":
            sampling = FrameSampling(mode="keyframes", max_frames=self.video_frames)
        else:
            sampling = ctx.sampling
        results: list[tuple[float, Region, np.ndarray | None, float]] = []
        for frame in media.frames(sampling):
            try:
                om = robust_outlier_map(to_grey(frame.rgb))
            except ValueError:  # too small to analyse
                continue
            region = strongest_region(om)
            heat = heatmap_from_map(om) if ctx.want_heatmaps else None
            results.append((region.strength, region, heat, frame.time_s))
            if len(results) >= self.video_frames:
                break
        if not results:
            return DetectorResult(detector=self.name, score=None, kind=self.kind,
                                  summary="image too small for noise-consistency analysis")
        strengths = np.array([r[0] for r in results])
        # Video: a composited subject persists, a content false alarm rarely does in the
        # same way, so the median over keyframes is the evidence; the heatmap shown is
        # that of the most anomalous keyframe.
        strength = float(np.median(strengths))
        top = results[int(np.argmax(strengths))]
        score = evidence_to_score(strength, self.cal)
        region = top[1]
        h, w = (top[2].shape if top[2] is not None else (0, 0))
        evidence: list[str] = []
        if score > 0.5:
            x0, y0, x1, y1 = region.bbox
            where = f"region x={x0}-{x1}, y={y0}-{y1} px ({region.area_frac:.0%} of the frame)"
            if media.info.media_type == "video":
                where += f" in the keyframe at {top[3]:.1f} s"
            evidence.append(
                f"noise statistics of the {where} disagree with the rest "
                f"(region evidence {strength:.1f}, untouched media rarely exceed "
                f"{self.cal['low']:.1f})"
            )
            summary = f"local noise inconsistency suggests splicing (score {score:.2f})"
        else:
            summary = "no compact region with inconsistent noise statistics"
        details: dict[str, Any] = {
            "region_evidence": round(strength, 3),
            "frames": len(results),
            "bbox": list(region.bbox) if region.n_cells else None,
            "area_frac": round(region.area_frac, 4),
            "heatmap_size": [int(w), int(h)] if top[2] is not None else None,
            "heatmap_meaning": HEATMAP_MEANING,
        }
        return DetectorResult(
            detector=self.name, score=score, kind=self.kind, summary=summary,
            evidence=evidence, details=details, heatmap=top[2],
        )
