"""Fusion rules: decisive overrides, no-evidence stays uncertain, log-odds combination."""

from __future__ import annotations

import pytest

from antifake.fusion import EvidenceFusion
from antifake.results import DetectorResult, GeneratorGuess


def r(name: str, score: float | None, **kw: object) -> DetectorResult:
    return DetectorResult(detector=name, score=score, summary=name, **kw)  # type: ignore[arg-type]


def test_no_evidence_is_uncertain_not_authentic() -> None:
    fused = EvidenceFusion().fuse([r("c2pa", None), r("watermark", None), r("metadata", None)])
    assert fused.verdict == "uncertain"
    assert fused.ai_probability == pytest.approx(0.5)
    assert fused.generator is None
    assert fused.details["basis"] == "no-evidence"


def test_decisive_result_overrides_other_scores() -> None:
    gen = GeneratorGuess("runway_gen3", 0.99, "Runway Gen-3 Alpha")
    fused = EvidenceFusion().fuse(
        [r("c2pa", 0.99, decisive=True, generator=gen), r("forensic", 0.05)]
    )
    assert fused.verdict == "ai_generated"
    assert fused.ai_probability == pytest.approx(0.99)
    assert fused.generator == gen


def test_independent_evidence_adds_up() -> None:
    one = EvidenceFusion().fuse([r("a", 0.75)])
    two = EvidenceFusion().fuse([r("a", 0.75), r("b", 0.75)])
    assert one.verdict == "uncertain"
    assert two.ai_probability > one.ai_probability
    assert two.ai_probability == pytest.approx(0.9)  # odds 3 * 3 = 9
    assert two.verdict == "ai_generated"


def test_low_scores_give_authentic_and_no_generator() -> None:
    gen = GeneratorGuess("stable_diffusion", 0.5)
    fused = EvidenceFusion().fuse([r("a", 0.1, generator=gen)])
    assert fused.verdict == "authentic"
    assert fused.generator is None


def test_failed_detector_is_ignored() -> None:
    failed = r("bad", 0.99)
    failed.error = {"code": "internal_error", "message": "boom"}
    fused = EvidenceFusion().fuse([failed])
    assert fused.verdict == "uncertain"


def test_attribution_prefers_strongest_evidence() -> None:
    weak = r("metadata", 0.85, generator=GeneratorGuess("midjourney", 0.6))
    strong = r("watermark", 0.97, generator=GeneratorGuess("stable_diffusion", 0.9))
    fused = EvidenceFusion().fuse([weak, strong])
    assert fused.generator is not None and fused.generator.family == "stable_diffusion"


def test_scores_are_clipped_and_nan_rejected() -> None:
    assert r("x", 1.5).score == 1.0
    assert r("x", -1).score == 0.0
    with pytest.raises(ValueError):
        r("x", float("nan"))
