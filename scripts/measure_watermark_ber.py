"""Measure the watermark detector's bit-error rates on unmarked and marked images.

Usage (from the repo root, in the venv; needs the ``invisible-watermark`` package)::

    PYTHONPATH=src python scripts/measure_watermark_ber.py [--real-dir DIR]

Unmarked: 50 synthetic images (5 kinds x 10 seeds: noisy texture, smooth blobs, white
noise, flat-with-noise, 1024x1024 texture), plus every image under ``--real-dir`` if given
(read in place, never copied). Marked: 20 images (each known mark on 5 images), embedded
with imwatermark's own encoder the way the generators do it, then read as PNG and after
JPEG re-encoding at quality 95 and 90. Prints, per set, the lowest BER the detector saw
over all marks / channel orders / tiles, and how many images it called watermarked.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from antifake.detectors.watermark.detector import read_marks
from antifake.detectors.watermark.marks import KNOWN_MARKS, KnownMark


def textured(seed: int, size: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([x * 255 / size, y * 255 / size, (x + y) % 256], axis=-1)
    return np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)


def smooth(seed: int, size: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = rng.normal(0, 1, (size // 16, size // 16, 3)).astype(np.float32)
    img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    img = (img - img.min()) / (img.max() - img.min()) * 200 + 20
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def white_noise(seed: int, size: int = 512) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def flat(seed: int, size: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), rng.integers(30, 220, 3), dtype=np.float64)
    return np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)


UNMARKED_KINDS: dict[str, Callable[[int], np.ndarray]] = {
    "textured512": textured,
    "smooth512": smooth,
    "noise512": white_noise,
    "flat512": flat,
    "textured1024": lambda s: textured(s, 1024),
}


def embed(rgb: np.ndarray, mark: KnownMark) -> np.ndarray:
    """Mark like the reference scripts: RGB -> BGR, encode, back to RGB."""
    from imwatermark import WatermarkEncoder  # imports torch: only here

    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", mark.bits.tolist())
    bgr = encoder.encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), "dwtDct")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def embed_float_sdxl(rgb: np.ndarray) -> np.ndarray:
    """Mark like diffusers' StableDiffusionXLWatermarker: float32 BGR in [0, 255], round."""
    from imwatermark import WatermarkEncoder

    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", KNOWN_MARKS[0].bits.tolist())
    out = encoder.encode(np.ascontiguousarray(rgb[:, :, ::-1].astype(np.float32)), "dwtDct")
    return np.ascontiguousarray(np.clip(out[:, :, ::-1], 0, 255).round().astype(np.uint8))


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def lowest_ber(rgb: np.ndarray, only: str | None = None) -> tuple[float, bool]:
    readings = [r for r in read_marks(rgb) if only is None or r.mark.key == only]
    return min(r.ber for r in readings), any(r.found for r in readings)


def report(label: str, rows: list[tuple[float, bool]]) -> None:
    bers = np.array([b for b, _ in rows])
    hits = sum(f for _, f in rows)
    print(
        f"{label:<34} n={len(rows):>3}  lowest-BER min={bers.min():.3f} "
        f"median={np.median(bers):.3f} max={bers.max():.3f}  called watermarked: {hits}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-dir", type=Path, help="directory of real photos (read-only)")
    args = parser.parse_args()

    unmarked = [(k, fn(seed)) for k, fn in UNMARKED_KINDS.items() for seed in range(10)]
    report("unmarked synthetic (any mark)", [lowest_ber(img) for _, img in unmarked])
    if args.real_dir:
        rows = []
        for path in sorted(args.real_dir.rglob("*")):
            if path.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}:
                with Image.open(path) as im:
                    rgb = np.asarray(im.convert("RGB"))
                if rgb.shape[0] * rgb.shape[1] >= 256 * 256:
                    rows.append(lowest_ber(rgb))
        report(f"real photos in {args.real_dir.name} (any mark)", rows)

    covers = [textured(100), smooth(101), textured(102), smooth(103), textured(104, 768)]
    marked_f = [embed_float_sdxl(c) for c in covers]
    report("sdxl (diffusers float), PNG", [lowest_ber(m, "sdxl") for m in marked_f])
    report("sdxl (diffusers float), JPEG q95", [lowest_ber(jpeg(m, 95), "sdxl") for m in marked_f])
    for mark in KNOWN_MARKS:
        marked = [embed(c, mark) for c in covers]
        report(f"{mark.key} marked, PNG", [lowest_ber(m, mark.key) for m in marked])
        for q in (95, 90):
            report(f"{mark.key} marked, JPEG q{q}", [lowest_ber(jpeg(m, q), mark.key)
                                                     for m in marked])


if __name__ == "__main__":
    main()
