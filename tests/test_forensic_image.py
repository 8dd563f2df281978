"""forensic_image detector and calibrated fusion: shipped ONNX model, shapes, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from antifake.calibration import CalibratedFusion, fit_calibrated_fusion, refit_from_tsv
from antifake.config import FrameSampling
from antifake.detectors.base import AnalysisContext
from antifake.detectors.forensic_image import ForensicImageDetector
from antifake.detectors.forensic_image.detector import load_config, score_frame
from antifake.detectors.forensic_image.preprocess import GRID, prepare_rgb
from antifake.detectors.registry import available_detectors, create_detector
from antifake.media import open_media
from antifake.results import DetectorResult
from synth import write_image, write_video


def test_registered_as_forensic_for_images_and_video() -> None:
    assert "forensic_image" in available_detectors()
    det = create_detector("forensic_image")
    assert det.kind == "forensic"
    assert det.media_types == frozenset({"image", "video"})


def test_shipped_model_is_small_and_configured() -> None:
    onnx = Path(__file__).parents[1] / "src/antifake/detectors/forensic_image/forensic_image.onnx"
    # EfficientNet-Lite0 up to block 14 + probes is ~9 MB; the bound catches a whole
    # backbone or an unpruned export slipping in.
    assert onnx.stat().st_size < 12 * 1024 * 1024
    cfg = load_config()
    assert cfg["version"] == create_detector("forensic_image").version
    assert 0.0 < cfg["threshold"] < 1.0
    assert cfg["classes"][-1] == "other_ai"


@pytest.mark.parametrize(("w", "h"), [(96, 64), (700, 500), (20, 10)])
def test_prepare_rgb_grid_and_max_side(w: int, h: int) -> None:
    out = prepare_rgb(np.zeros((h, w, 3), np.uint8))
    assert out.shape[0] % GRID == 0 and out.shape[1] % GRID == 0
    assert max(out.shape[:2]) <= 384


def test_image_probability_and_heatmap(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", width=160, height=96)
    r = ForensicImageDetector().analyze(open_media(path), AnalysisContext())
    assert r.score is not None and 0.0 <= r.score <= 1.0
    assert r.heatmap is not None and r.heatmap.dtype == np.float32
    # 160x96 -> cropped to 160x96 (multiples of 32) -> stride-16 grid of 6 x 10.
    assert r.heatmap.shape == (6, 10)
    assert float(r.heatmap.min()) >= 0.0 and float(r.heatmap.max()) <= 1.0
    assert r.timeline is None
    assert set(r.details["family_probabilities"]) == set(load_config()["classes"])
    assert math.isclose(sum(r.details["family_probabilities"].values()), 1.0, abs_tol=1e-3)


def test_image_logit_is_mean_of_heatmap_logits() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (128, 192, 3), dtype=np.uint8)
    logits, logit_map = score_frame(rgb)
    assert math.isclose(float(logits[0]), float(logit_map.mean()), rel_tol=1e-4, abs_tol=1e-4)


def test_deterministic(tmp_path: Path) -> None:
    path = write_image(tmp_path / "b.jpg", width=128, height=128, seed=3, quality=85)
    det = ForensicImageDetector()
    a = det.analyze(open_media(path), AnalysisContext())
    b = det.analyze(open_media(path), AnalysisContext())
    assert a.score == b.score
    assert a.heatmap is not None and b.heatmap is not None
    assert np.array_equal(a.heatmap, b.heatmap)


def test_video_timeline_and_clip_score(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", frames=12, width=96, height=64, fps=12)
    ctx = AnalysisContext(sampling=FrameSampling(mode="fps", fps=4, max_frames=8))
    r = ForensicImageDetector().analyze(open_media(path), ctx)
    assert r.timeline is not None and r.timeline_times_s is not None
    assert len(r.timeline) == len(r.timeline_times_s) >= 2
    assert all(0.0 <= v <= 1.0 for v in r.timeline)
    assert r.timeline_times_s == sorted(r.timeline_times_s)
    assert r.score is not None and min(r.timeline) <= r.score <= max(r.timeline) + 1e-9
    assert r.heatmap is not None and r.heatmap.shape == (4, 6)


@pytest.mark.parametrize(("width", "height"), [(16, 16), (500, 40), (1, 1)])
def test_learned_picture_models_abstain_below_the_smallest_side(
        tmp_path: Path, width: int, height: int) -> None:
    """A 16x16 noise clip was called AI at 0.99 and attributed to Pika: a picture far
    smaller than any the models were trained on (128 px) gets no opinion, and with no other
    evidence the verdict is uncertain."""
    from antifake.detectors.base import MIN_LEARNED_SIDE
    from antifake.engine import Engine

    path = write_image(tmp_path / "small.png", width=width, height=height)
    media = open_media(path)
    for name in ("forensic_image", "semantic_clip"):
        r = create_detector(name).analyze(media, AnalysisContext())
        assert r.score is None and r.details["unavailable"] == "too_small"
        assert f"{width}x{height}" in r.summary and str(MIN_LEARNED_SIDE) in r.summary
    result = Engine(detectors=["forensic_image", "semantic_clip"]).analyze(path)
    assert result.error is None and result.verdict == "uncertain"
    assert result.generator is None


def test_learned_picture_models_judge_from_the_smallest_side(tmp_path: Path) -> None:
    from antifake.detectors.base import MIN_LEARNED_SIDE

    path = write_image(tmp_path / "edge.png", width=2 * MIN_LEARNED_SIDE, height=MIN_LEARNED_SIDE)
    r = ForensicImageDetector().analyze(open_media(path), AnalysisContext())
    assert r.score is not None and 0.0 <= r.score <= 1.0


# ------------------------------------------------------------------------- calibration
def _res(name: str, score: float | None, decisive: bool = False) -> DetectorResult:
    return DetectorResult(detector=name, score=score, summary="", decisive=decisive)


def test_calibrated_fusion_missing_detectors_are_neutral() -> None:
    f = CalibratedFusion(coef={"forensic_image": 1.0, "temporal": 2.0}, intercept=0.0,
                         ai_threshold=0.8, authentic_threshold=0.2)
    only = f.fuse([_res("forensic_image", 0.9)])
    both = f.fuse([_res("forensic_image", 0.9), _res("temporal", None)])
    assert math.isclose(only.ai_probability, 0.9, rel_tol=1e-6)
    assert only.ai_probability == both.ai_probability
    assert only.verdict == "ai_generated"
    assert f.fuse([]).verdict == "uncertain"


def test_calibrated_fusion_decisive_overrides() -> None:
    f = CalibratedFusion(coef={"forensic_image": 1.0}, ai_threshold=0.8)
    out = f.fuse([_res("forensic_image", 0.01), _res("c2pa", 0.99, decisive=True)])
    assert out.verdict == "ai_generated" and out.details["basis"] == "decisive:c2pa"


def test_fit_calibration_threshold_meets_fpr_and_refit_tsv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    real = 1 / (1 + np.exp(-rng.normal(-2, 1, 200)))
    fake = 1 / (1 + np.exp(-rng.normal(2, 1, 200)))
    scores = [{"forensic_image": float(s)} for s in np.concatenate([real, fake])]
    labels = [0] * 200 + [1] * 200
    fusion = fit_calibrated_fusion(scores, labels, target_fpr=0.05)
    assert fusion.coef["forensic_image"] > 0
    p_real = np.array([fusion.probability(s) for s in scores[:200]])
    assert np.mean(p_real >= fusion.ai_threshold) <= 0.05
    assert fusion.authentic_threshold <= fusion.ai_threshold
    tsv = tmp_path / "oof.tsv"
    tsv.write_text("is_ai\tgroup\tforensic_image\ttemporal\n" + "".join(
        f"{y}\timage\t{s['forensic_image']}\t\n" for s, y in zip(scores, labels, strict=True)))
    out = tmp_path / "cal.json"
    refit = refit_from_tsv(tsv, out)
    assert json.loads(out.read_text())["coef"].keys() == {"forensic_image", "temporal"}
    assert math.isclose(refit.coef["forensic_image"], fusion.coef["forensic_image"],
                        rel_tol=1e-3)
    assert CalibratedFusion.load(out).ai_threshold == refit.ai_threshold


def test_shipped_calibration_loads() -> None:
    f = CalibratedFusion.load()
    assert "forensic_image" in f.coef and 0 < f.ai_threshold < 1


@pytest.mark.parametrize("family_logits,want", [
    # gen1/gen2 split the evidence: neither reaches 0.5, together they do -> "runway"
    ({"runway_gen1": 1.0, "runway_gen2": 1.2, "other_ai": 0.9}, "runway"),
    # one family alone is sure enough -> that family
    ({"runway_gen2": 3.0}, "runway_gen2"),
    # spread over unrelated families -> unknown
    ({"pika": 1.0, "stable_diffusion": 1.0, "other_ai": 1.0}, "unknown"),
])
def test_attribution_reports_a_family_a_parent_or_unknown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, family_logits: dict[str, float],
        want: str) -> None:
    from antifake.detectors.forensic_image import detector as mod

    classes = load_config()["classes"]
    logits = np.asarray([4.0] + [family_logits.get(c, -2.0) for c in classes])  # sure it's AI

    def fake_score(rgb: np.ndarray, threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
        return logits, np.full((2, 2), 4.0, dtype=np.float32)

    monkeypatch.setattr(mod, "score_frame", fake_score)
    r = ForensicImageDetector().analyze(open_media(write_image(tmp_path / "a.png")),
                                        AnalysisContext())
    assert r.generator is not None and r.generator.family == want
    probs = r.details["family_probabilities"]
    if want == "runway":
        assert max(probs.values()) < 0.5
        assert r.generator.probability == pytest.approx(
            probs["runway_gen1"] + probs["runway_gen2"], abs=1e-3)
