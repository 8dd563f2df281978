"""Splicing (noise-inconsistency) detector on synthesised images (no corpus needed)."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import available_detectors
from antifake.detectors.splicing.detector import SplicingDetector
from antifake.media import open_media

H, W = 256, 384
BOX = (slice(64, 192), slice(128, 288))  # rows, cols of the spliced patch


def _scene(seed: int = 0) -> np.ndarray:
    """Smooth multi-scale content without fine noise (noise is added per test)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W), np.float32)
    for scale in (8, 24, 64):
        small = rng.normal(0, 1, (H // scale + 2, W // scale + 2)).astype(np.float32)
        img += cv2.resize(small, (W + 2 * scale, H + 2 * scale))[:H, :W] * 25
    return img + 128


def _save(path: Path, grey: np.ndarray, quality: int = 95) -> Path:
    rgb = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    Image.fromarray(rgb).save(path, quality=quality)
    return path


def _noise_splice(path: Path) -> Path:
    rng = np.random.default_rng(1)
    img = _scene() + rng.normal(0, 1.5, (H, W))
    img[BOX] += rng.normal(0, 6.0, (128, 160))  # another sensor's noise level
    return _save(path, img)


def _untouched(path: Path) -> Path:
    rng = np.random.default_rng(1)
    return _save(path, _scene() + rng.normal(0, 1.5, (H, W)))


def _jpeg_history_splice(path: Path) -> Path:
    """Patch taken from a heavily compressed, resampled copy; whole saved at q=95."""
    rng = np.random.default_rng(2)
    img = _scene(3) + rng.normal(0, 2.0, (H, W))
    rgb = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    buf = io.BytesIO()
    Image.fromarray(cv2.resize(rgb, (W // 2, H // 2))).save(buf, format="JPEG", quality=30)
    donor = cv2.resize(np.array(Image.open(buf)), (W, H)).astype(np.float32)[..., 0]
    img[BOX] = donor[BOX]
    return _save(path, img)


def _inside_outside(heat: np.ndarray) -> tuple[float, float]:
    mask = np.zeros(heat.shape, bool)
    mask[BOX] = True
    return float(heat[mask].mean()), float(heat[~mask].mean())


def test_registered() -> None:
    assert "splicing" in available_detectors()


def test_noise_level_splice_is_localised_and_scored(tmp_path: Path) -> None:
    det = SplicingDetector()
    spliced = det.analyze(open_media(_noise_splice(tmp_path / "s.jpg")), AnalysisContext())
    clean = det.analyze(open_media(_untouched(tmp_path / "u.jpg")), AnalysisContext())
    assert spliced.heatmap is not None
    assert spliced.heatmap.shape == (H, W) and spliced.heatmap.dtype == np.float32
    assert spliced.heatmap.min() >= 0.0 and spliced.heatmap.max() <= 1.0
    inside, outside = _inside_outside(spliced.heatmap)
    assert inside > outside + 0.2, (inside, outside)
    assert spliced.score is not None and clean.score is not None
    assert spliced.score > clean.score
    x0, y0, x1, y1 = spliced.details["bbox"]
    assert x0 < 288 and x1 > 128 and y0 < 192 and y1 > 64  # bbox overlaps the patch
    assert spliced.evidence and "% of the frame" in spliced.evidence[0]


def test_jpeg_history_splice_heatmap_peaks_inside(tmp_path: Path) -> None:
    res = SplicingDetector().analyze(
        open_media(_jpeg_history_splice(tmp_path / "h.jpg")), AnalysisContext()
    )
    assert res.heatmap is not None
    inside, outside = _inside_outside(res.heatmap)
    assert inside > outside, (inside, outside)


def test_untouched_is_not_evidence_of_authenticity(tmp_path: Path) -> None:
    res = SplicingDetector().analyze(open_media(_untouched(tmp_path / "u.jpg")),
                                     AnalysisContext())
    assert res.score is not None and 0.5 <= res.score < 0.75


def test_tiny_image_has_no_opinion(tmp_path: Path) -> None:
    path = _save(tmp_path / "t.png", np.full((20, 20), 128.0))
    assert SplicingDetector().analyze(open_media(path), AnalysisContext()).score is None
