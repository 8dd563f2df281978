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
