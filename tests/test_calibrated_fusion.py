"""CalibratedFusion: per-media-type operating points and provenance evidence on top."""

from __future__ import annotations

import math

import numpy as np
import pytest

from antifake.calibration import CalibratedFusion, fit_calibrated_fusion
from antifake.results import DetectorResult, GeneratorGuess


def res(name: str, score: float | None, kind: str = "forensic", **kw: object) -> DetectorResult:
    return DetectorResult(detector=name, score=score, summary=name, kind=kind,  # type: ignore[arg-type]
                          **kw)  # type: ignore[arg-type]


FUSION = CalibratedFusion(
    coef={"forensic_image": 1.0}, intercept=0.0, ai_threshold=0.9, authentic_threshold=0.1,
    ai_thresholds={"image": 0.9, "video": 0.6}, authentic_thresholds={"image": 0.1, "video": 0.1},
    ignore=["splicing"],
)


def test_operating_point_depends_on_media_type() -> None:
    results = [res("forensic_image", 0.7)]
    assert FUSION.fuse(results, media_type="video").verdict == "ai_generated"
    assert FUSION.fuse(results, media_type="image").verdict == "uncertain"
    # Unknown type: the fallback (strict) point.
    assert FUSION.fuse(results).verdict == "uncertain"
    assert FUSION.fuse(results, media_type="video").details["ai_threshold"] == 0.6


def test_provenance_opinions_add_evidence_to_the_calibrated_score() -> None:
    gen = GeneratorGuess("stable_diffusion", 0.95)
    alone = FUSION.fuse([res("forensic_image", 0.5)], media_type="image")
    with_meta = FUSION.fuse(
        [res("forensic_image", 0.5), res("metadata", 0.95, kind="provenance", generator=gen)],
        media_type="image",
    )
    assert alone.verdict == "uncertain"
    assert with_meta.ai_probability == pytest.approx(0.95)
    assert with_meta.verdict == "ai_generated"
    assert with_meta.generator == gen
    assert with_meta.details["basis"] == "calibrated+evidence"
    assert with_meta.details["evidence_detectors"] == ["metadata"]


def test_provenance_without_forensic_opinion_starts_from_even_odds() -> None:
    out = FUSION.fuse([res("watermark", 0.97, kind="provenance")], media_type="image")
    assert out.ai_probability == pytest.approx(0.97)
    assert out.details["basis"] == "evidence"


def test_ignored_detectors_stay_out_of_the_verdict() -> None:
    out = FUSION.fuse([res("forensic_image", 0.5), res("splicing", 0.95, kind="splicing")],
                      media_type="image")
    assert out.ai_probability == pytest.approx(0.5)
    assert out.details["ignored_detectors"] == ["splicing"]


def test_plugin_detector_added_after_the_fit_counts_as_evidence() -> None:
    out = FUSION.fuse([res("my_plugin", 0.95)], media_type="image")
    assert out.ai_probability == pytest.approx(0.95)
    assert out.verdict == "ai_generated"


def test_fit_sets_per_group_thresholds_at_target_fpr() -> None:
    rng = np.random.default_rng(1)

    def sig(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    # Video scores are shifted up for real and AI alike: one global threshold would flag
    # far more than 5% of real videos.
    groups, labels, scores = [], [], []
    for group, shift in (("image", 0.0), ("video", 2.0)):
        for label, mean in ((0, -2.0), (1, 2.0)):
            for s in sig(rng.normal(mean + shift, 1.0, 300)):
                groups.append(group)
                labels.append(label)
                scores.append({"forensic_image": float(s)})
    fusion = fit_calibrated_fusion(scores, labels, groups=groups, target_fpr=0.05)
    assert set(fusion.ai_thresholds) == {"image", "video"}
    assert fusion.ai_thresholds["video"] > fusion.ai_thresholds["image"]
    p = np.array([fusion.probability(s) for s in scores])
    g = np.array(groups)
    y = np.array(labels)
    for group in ("image", "video"):
        real = p[(g == group) & (y == 0)]
        assert np.mean(real >= fusion.ai_thresholds[group]) <= 0.05
        assert fusion.authentic_thresholds[group] <= fusion.ai_thresholds[group]
    round_trip = CalibratedFusion.from_dict(fusion.to_dict())
    assert round_trip.ai_thresholds == fusion.ai_thresholds


def test_operating_point_holds_within_every_stratum() -> None:
    """Laundered real files score higher than the originals: a point fitted on the pooled
    rows lets more than 5 % of laundered real files through; with strata it may not."""
    rng = np.random.default_rng(2)
    scores, labels, strata = [], [], []
    for condition, real_mean in (("original", -2.0), ("laundered", -0.5)):
        for label, mean in ((0, real_mean), (1, 2.0)):
            for z in rng.normal(mean, 1.0, 400):
                scores.append({"forensic_image": float(1 / (1 + np.exp(-z)))})
                labels.append(label)
                strata.append(condition)
    pooled = fit_calibrated_fusion(scores, labels, target_fpr=0.05)
    strict = fit_calibrated_fusion(scores, labels, target_fpr=0.05, strata=strata)
    p = np.array([strict.probability(s) for s in scores])
    y, st = np.array(labels), np.array(strata)
    laundered_real = (y == 0) & (st == "laundered")
    assert np.mean(p[laundered_real] >= pooled.ai_threshold) > 0.05
    for condition in ("original", "laundered"):
        real = (y == 0) & (st == condition)
        assert np.mean(p[real] >= strict.ai_threshold) <= 0.05
    assert strict.ai_threshold > pooled.ai_threshold


def test_shipped_calibration_has_image_and_video_points() -> None:
    f = CalibratedFusion.load()
    assert {"image", "video"} <= set(f.ai_thresholds)
    # splicing localises, temporal was not refitted on the broad corpus: neither votes;
    # every detector that votes has a fitted weight.
    assert f.ignore == ["splicing", "temporal"]
    assert set(f.coef) == {"forensic_image", "semantic_clip"}
    for t in f.ai_thresholds.values():
        assert 0 < t < 1 and not math.isnan(t)
