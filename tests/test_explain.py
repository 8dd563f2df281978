"""Evidence semantics (issue 10): which results count as AI evidence, and plain reasons."""

from __future__ import annotations

from pathlib import Path

import synth
from antifake.calibration import CalibratedFusion
from antifake.engine import Engine
from antifake.explain import annotate, main_evidence
from antifake.fusion import EvidenceFusion
from antifake.results import AnalysisResult, DetectorResult

FUSION = CalibratedFusion(
    coef={"forensic_image": 1.0}, intercept=0.0, ai_threshold=0.9, authentic_threshold=0.1,
    ai_thresholds={"video": 0.8}, authentic_thresholds={"video": 0.15},
    ignore=["splicing", "temporal"],
    ignore_by_media_type={"video": ["synthetic_speech"]},
)


def _result(detectors: list[DetectorResult], media_type: str = "video") -> AnalysisResult:
    fused = FUSION.fuse(detectors, media_type=media_type)
    result = AnalysisResult(file="x", media_type=media_type, verdict=fused.verdict,
                            ai_probability=fused.ai_probability, detectors=detectors,
                            fusion=fused.details)
    annotate(result)
    return result


def det(name: str, score: float | None, **kw: object) -> DetectorResult:
    return DetectorResult(detector=name, score=score, summary=f"{name} summary",
                          kind="forensic", **kw)  # type: ignore[arg-type]


def test_ignored_detectors_are_neutral_whatever_their_score() -> None:
    r = _result([det("forensic_image", 0.02), det("splicing", 0.5), det("temporal", 0.95),
                 det("synthetic_speech", 0.99)])
    stances = {d.detector: d.stance for d in r.detectors}
    assert r.verdict == "authentic"
    assert stances == {"forensic_image": "authentic", "splicing": "neutral",
                       "temporal": "neutral", "synthetic_speech": "neutral"}
    # Nothing that did not drive the verdict is shown as AI evidence.
    assert not [d for d in r.detectors if d.stance == "ai"]
    assert any("authentic threshold 15 %" in x for x in r.reasons)
    assert main_evidence(r).startswith("no sign of generation - forensic_image")


def test_ai_verdict_names_its_evidence_and_threshold() -> None:
    r = _result([det("forensic_image", 0.97), det("splicing", 0.9)])
    assert r.verdict == "ai_generated"
    assert [d.detector for d in r.detectors if d.stance == "ai"] == ["forensic_image"]
    assert "AI threshold 80 %" in r.reasons[0]
    assert any(x.startswith("forensic_image:") for x in r.reasons)
    assert main_evidence(r) == "forensic_image: forensic_image summary"


def test_weak_push_is_neutral_and_uncertain_says_why() -> None:
    r = _result([det("forensic_image", 0.55)])
    assert r.verdict == "uncertain"
    assert r.detectors[0].stance == "neutral"  # logit(0.55) = 0.2 < 0.4
    # A weak opinion is still an opinion: the reason is the thresholds, not "no opinion".
    assert "between the authentic" in r.reasons[0]
    nothing = _result([det("c2pa", None), det("splicing", 0.7)])
    assert nothing.verdict == "uncertain"
    assert "No detector gave a usable opinion" in nothing.reasons[0]
    mid = _result([det("forensic_image", 0.7)])
    assert "between the authentic (15 %) and AI (80 %) thresholds" in mid.reasons[0]
    assert any(x.startswith("Pointing to AI: forensic_image") for x in mid.reasons)


def test_decisive_provenance_is_ai_evidence_and_leads_the_reasons() -> None:
    r = _result([det("c2pa", 0.99, decisive=True), det("forensic_image", 0.2)])
    assert r.verdict == "ai_generated"
    assert r.detectors[0].stance == "ai" and r.detectors[1].stance == "authentic"
    assert r.reasons[0].startswith("c2pa settles it on its own")


def test_evidence_fusion_records_contributions_too() -> None:
    fused = EvidenceFusion().fuse([det("metadata", 0.95), det("c2pa", None)])
    assert set(fused.details["contributions"]) == {"metadata"}
    assert fused.details["contributions"]["metadata"] > 2


def test_engine_results_carry_stances_and_reasons(tmp_path: Path) -> None:
    path = synth.write_image(tmp_path / "a.png")
    out = Engine().analyze(path).to_dict()
    assert out["reasons"], out
    assert {d["stance"] for d in out["detectors"]} <= {"ai", "authentic", "neutral"}
    splicing = [d for d in out["detectors"] if d["detector"] == "splicing"]
    assert splicing and splicing[0]["stance"] == "neutral"
    assert all("stance" in e for e in out["evidence"])
