"""The result schema: what every detector returns and what a scan reports.

The JSON fields produced by :meth:`AnalysisResult.to_dict` (``file``, ``media_type``,
``verdict``, ``ai_probability``, ``generator``, ``evidence``, ``error``) are a public
contract relied upon by other tools; add fields, never rename or remove them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Verdict = Literal["ai_generated", "authentic", "uncertain"]
DetectorKind = Literal["provenance", "forensic", "temporal", "splicing"]


@dataclass(frozen=True)
class GeneratorGuess:
    """A generator attribution: a family from :mod:`antifake.generators` and how sure."""

    family: str
    probability: float
    name: str | None = None  # the concrete product/model when known, e.g. "Runway Gen-3 Alpha"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"family": self.family, "probability": round(self.probability, 4)}
        if self.name:
            out["name"] = self.name
        return out


@dataclass
class DetectorResult:
    """Uniform output of every detector.

    ``score`` is the detector's probability that the media is AI-generated or AI-edited,
    in [0, 1], or ``None`` for "no opinion" (e.g. no watermark found says nothing about
    authenticity). ``decisive`` marks evidence that settles the verdict on its own (a valid
    C2PA manifest declaring AI generation). ``heatmap`` is an HxW float32 array in [0, 1]
    at any resolution (renderers resize it); ``timeline`` holds per-sampled-frame scores
    for video with the matching ``timeline_times_s``.
    """

    detector: str
    score: float | None
    summary: str
    kind: DetectorKind = "provenance"
    evidence: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    generator: GeneratorGuess | None = None
    decisive: bool = False
    heatmap: np.ndarray | None = None
    timeline: list[float] | None = None
    timeline_times_s: list[float] | None = None
    elapsed_ms: float = 0.0
    error: dict[str, str] | None = None  # the detector failed; the others still ran
    # What this result meant for the verdict (set after fusion, see antifake.explain):
    # "ai" = evidence for AI, "authentic" = evidence against, "neutral" = neither (no
    # opinion, too weak, or a detector the fusion leaves out, e.g. splicing).
    stance: str = "neutral"

    def __post_init__(self) -> None:
        if self.score is not None:
            if math.isnan(self.score):
                raise ValueError(f"{self.detector}: score is NaN")
            self.score = float(min(1.0, max(0.0, self.score)))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "detector": self.detector,
            "kind": self.kind,
            "score": None if self.score is None else round(self.score, 4),
            "summary": self.summary,
            "evidence": list(self.evidence),
            "decisive": self.decisive,
            "generator": self.generator.to_dict() if self.generator else None,
            "details": self.details,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "has_heatmap": self.heatmap is not None,
            "stance": self.stance,
        }
        if self.timeline is not None:
            out["timeline"] = [round(v, 4) for v in self.timeline]
            out["timeline_times_s"] = [round(t, 3) for t in (self.timeline_times_s or [])]
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class AnalysisResult:
    """The outcome for one file: fused verdict plus every detector's output."""

    file: str
    media_type: str | None
    verdict: Verdict | None
    ai_probability: float | None
    generator: GeneratorGuess | None = None
    detectors: list[DetectorResult] = field(default_factory=list)
    media: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    elapsed_ms: float = 0.0
    engine_version: str = ""
    analyzed_at: str = ""  # ISO-8601 UTC
    fusion: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # plain-language "why" of the verdict
    # For a video with speech: what synthetic_speech found in the sound track (see
    # antifake.explain.sound_track_summary); None otherwise.
    audio: dict[str, Any] | None = None
    # Files written for this result by the CLI (kind -> paths), e.g. heatmaps, report.
    artifacts: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def heatmaps(self) -> dict[str, np.ndarray]:
        """Detector name -> heatmap array, for detectors that produced one."""
        return {d.detector: d.heatmap for d in self.detectors if d.heatmap is not None}

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``antifake scan --json`` and ``POST /v1/detect``."""
        return {
            "file": self.file,
            "media_type": self.media_type,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "ai_probability": None
            if self.ai_probability is None
            else round(self.ai_probability, 4),
            "generator": self.generator.to_dict() if self.generator else None,
            "evidence": [
                {"detector": d.detector, "score": None if d.score is None else round(d.score, 4),
                 "summary": d.summary, "stance": d.stance}
                for d in self.detectors
            ],
            "error": self.error,
            "detectors": [d.to_dict() for d in self.detectors],
            "media": self.media,
            "fusion": self.fusion,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "engine_version": self.engine_version,
            "analyzed_at": self.analyzed_at,
            **({"audio": self.audio} if self.audio else {}),
            **({"artifacts": self.artifacts} if self.artifacts else {}),
        }
