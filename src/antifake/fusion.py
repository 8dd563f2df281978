"""Fusion: many detector outputs -> one verdict, probability and generator attribution.

:class:`EvidenceFusion` is the default. It treats each detector's score as an independent
posterior under an even prior and adds their log-odds (naive Bayes). A detector with no
opinion (``score=None``) contributes nothing, so the absence of provenance leaves the
probability at the prior and the verdict ``uncertain``: a stripped file is not authentic
just because nothing was found. A *decisive* result (a valid C2PA manifest declaring AI
generation) settles the verdict on its own.

The thresholds are the operating points reported with each result under ``fusion``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from antifake.results import DetectorResult, GeneratorGuess, Verdict

PRIOR = 0.5
_EPS = 0.01  # scores are clipped to [eps, 1-eps] so one detector cannot reach infinity


def _logit(p: float) -> float:
    p = min(1 - _EPS, max(_EPS, p))
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def verdict_for(p: float, ai_threshold: float, authentic_threshold: float) -> Verdict:
    """The verdict for a fused probability at the given operating points."""
    if p >= ai_threshold:
        return "ai_generated"
    if p <= authentic_threshold:
        return "authentic"
    return "uncertain"


def decisive_override(usable: list[DetectorResult]) -> tuple[float, str] | None:
    """(probability, basis) of the strongest decisive result, or None if there is none."""
    decisive = [r for r in usable if r.decisive]
    if not decisive:
        return None
    top = max(decisive, key=lambda r: abs((r.score or 0.5) - 0.5))
    return float(top.score or 0.5), f"decisive:{top.detector}"


@dataclass(frozen=True)
class FusedVerdict:
    verdict: Verdict
    ai_probability: float
    generator: GeneratorGuess | None
    details: dict[str, Any]


class Fusion(Protocol):
    """Combines detector results into a verdict.

    ``media_type`` (``image``/``video``) lets a fusion use per-media operating points,
    ``formats`` (the file's format groups, :mod:`antifake.media.format_groups`) per-format
    ones.
    """

    name: str

    def fuse(
        self, results: list[DetectorResult], media_type: str | None = None,
        formats: Sequence[str] = (),
    ) -> FusedVerdict: ...


@dataclass
class EvidenceFusion:
    """Log-odds evidence fusion with decisive overrides (see module docstring)."""

    ai_threshold: float = 0.8
    authentic_threshold: float = 0.2
    name: str = "evidence-logodds-v1"

    def fuse(
        self, results: list[DetectorResult], media_type: str | None = None,
        formats: Sequence[str] = (),
    ) -> FusedVerdict:
        usable = [r for r in results if r.error is None and r.score is not None]
        override = decisive_override(usable)
        contributions = {r.detector: _logit(r.score or PRIOR) for r in usable}
        if override:
            p, basis = override
        else:
            p = _sigmoid(_logit(PRIOR) + sum(contributions.values()))
            basis = "log-odds" if usable else "no-evidence"
        verdict = verdict_for(p, self.ai_threshold, self.authentic_threshold)
        return FusedVerdict(
            verdict=verdict,
            ai_probability=p,
            generator=self._attribute(usable) if verdict != "authentic" else None,
            details={
                "method": self.name,
                "basis": basis,
                "ai_threshold": self.ai_threshold,
                "authentic_threshold": self.authentic_threshold,
                "opinions": len(usable),
                "contributions": {k: round(v, 4) for k, v in contributions.items()},
            },
        )

    @staticmethod
    def _attribute(results: list[DetectorResult]) -> GeneratorGuess | None:
        """The attribution backed by the most confident evidence of AI generation."""
        best: tuple[float, GeneratorGuess] | None = None
        for r in results:
            if r.generator is None or (r.score or 0.0) < 0.5:
                continue
            weight = (r.score or 0.0) * r.generator.probability + (1.0 if r.decisive else 0.0)
            if best is None or weight > best[0]:
                best = (weight, r.generator)
        return best[1] if best else None
