"""Latency of one detector on a 1024x1024 JPEG, decode included.

Each iteration: ``open_media`` (sniff, limits, metadata) + the detector's ``analyze``
(``forensic_image``: decode, resize to the working resolution, ONNX inference with
heatmap; ``semantic_clip``: decode, resize to 224, CLIP encoder, probe; ``both``: the two
one after the other, i.e. the learned part of a verdict). Reports median and p90 over
``--runs`` after ``--warmup`` runs. Usage (repo root, venv active)::

    PYTHONPATH=src python bench/bench_image_latency.py --runs 50
    PYTHONPATH=src python bench/bench_image_latency.py --runs 50 --detector both
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_jpeg(path: Path, size: int = 1024, seed: int = 0) -> Path:
    """A textured 1024x1024 photo-like JPEG (gradients + noise + shapes), quality 90."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.stack([x / size * 200, y / size * 200, (x + y) / (2 * size) * 255], axis=-1)
    img += rng.normal(0, 10, img.shape)
    for _ in range(30):
        cx, cy, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(20, 150))]
        img[max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] = rng.integers(0, 255, 3)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--image", type=Path, default=None, help="use this file instead")
    ap.add_argument("--detector", choices=["forensic_image", "semantic_clip", "both"],
                    default="forensic_image")
    args = ap.parse_args()

    from antifake.detectors.base import AnalysisContext
    from antifake.detectors.forensic_image import ForensicImageDetector
    from antifake.detectors.semantic_clip import SemanticClipDetector
    from antifake.media import open_media

    with tempfile.TemporaryDirectory() as tmp:
        path = args.image or make_jpeg(Path(tmp) / "bench.jpg")
        dets = {"forensic_image": [ForensicImageDetector()],
                "semantic_clip": [SemanticClipDetector()],
                "both": [ForensicImageDetector(), SemanticClipDetector()]}[args.detector]
        ctx = AnalysisContext()
        times = []
        for i in range(args.warmup + args.runs):
            t0 = time.perf_counter()
            media = open_media(path)
            results = [det.analyze(media, ctx) for det in dets]
            dt = (time.perf_counter() - t0) * 1000
            if i >= args.warmup:
                times.append(dt)
        times.sort()
        print(f"file: {path} ({Image.open(path).size[0]}x{Image.open(path).size[1]}), "
              f"detector(s): {args.detector}")
        for r in results:
            shape = None if r.heatmap is None else r.heatmap.shape
            print(f"{r.detector}: heatmap {shape}, score {r.score:.3f}")
        print(f"median {statistics.median(times):.1f} ms, p90 {times[int(0.9 * len(times))]:.1f}"
              f" ms, min {times[0]:.1f} ms over {len(times)} runs")


if __name__ == "__main__":
    main()
