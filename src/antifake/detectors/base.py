"""The detector protocol: one small class per detector, one output shape for all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

from antifake.config import FrameSampling, Limits
from antifake.media.types import Media, MediaType
from antifake.results import DetectorKind, DetectorResult


@dataclass
class AnalysisContext:
    """What a detector may need besides the media itself."""

    sampling: FrameSampling = field(default_factory=FrameSampling)
    limits: Limits = field(default_factory=Limits)
    want_heatmaps: bool = True
    # CPU threads a detector may use for its own parallel work (e.g. onnxruntime's
    # intra-op pool); None = the detector's default. The engine sets it when detectors
    # run side by side, so that they do not oversubscribe the cores.
    cpu_threads: int | None = None


@runtime_checkable
class Detector(Protocol):
    """Every detector implements this.

    ``name`` is the registry key (also the ``detector`` field of its results), ``kind`` one
    of provenance/forensic/temporal/splicing, ``media_types`` the media it can judge and
    ``version`` is reported with each result so a report says which model produced it.
    ``analyze`` must not raise for "nothing found" - it returns ``score=None`` instead; it
    raises :class:`antifake.errors.AntifakeError` only when the media itself is bad.
    """

    name: ClassVar[str]
    kind: ClassVar[DetectorKind]
    media_types: ClassVar[frozenset[MediaType]]
    version: ClassVar[str]

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult: ...


# No picture in the corpus the learned image models were trained on is under 128 px on its
# short side (the laundering chain downscales to 128-720 px). Far below that a frame is a
# few upscaled blocks whose score says nothing: a 16x16 noise clip was called AI at 0.99
# and attributed to Pika. Under this side such models abstain instead of extrapolating.
MIN_LEARNED_SIDE = 64


def too_small_for_learned_model(media: Media, name: str,
                                kind: DetectorKind) -> DetectorResult | None:
    """The no-opinion result of a learned image/frame model for a picture smaller than
    :data:`MIN_LEARNED_SIDE` on its short side, else None (the model may judge it)."""
    width, height = int(media.info.width), int(media.info.height)
    if width <= 0 or height <= 0 or min(width, height) >= MIN_LEARNED_SIDE:
        return None
    return DetectorResult(
        detector=name, score=None, kind=kind,
        summary=(f"picture too small to judge ({width}x{height}; the model needs "
                 f">= {MIN_LEARNED_SIDE} px on the short side)"),
        details={"unavailable": "too_small", "width": width, "height": height,
                 "min_side": MIN_LEARNED_SIDE})
