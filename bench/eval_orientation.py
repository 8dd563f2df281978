"""Does a photo's orientation move the verdict? Real photos scored upright, turned on their
side either way (pixels rotated, no tag: what the engine saw of a portrait phone photo
before EXIF Orientation was applied) and stored turned with the EXIF Orientation that
displays them upright (what a phone writes; the engine now turns them back).

    PYTHONPATH=src python bench/eval_orientation.py --media-root var/corpus \
        ../shared/corpus/extra-image-manifest.tsv --per-source 2

Copies are JPEG q 90 with the long side <= 720 px, written to a temporary folder; the
engine runs ``forensic_image`` + ``semantic_clip`` with the shipped fusion.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from antifake.engine import Engine


def pick_real_images(manifests: list[Path], per_source: int, seed: int) -> list[dict[str, str]]:
    """Up to ``per_source`` real images of every source repository, drawn with ``seed``."""
    by_source: dict[str, list[dict[str, str]]] = {}
    for manifest in manifests:
        with manifest.open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row["label"] == "real_image":
                    by_source.setdefault(row["source_repo"], []).append(row)
    rng = random.Random(seed)
    chosen: list[dict[str, str]] = []
    for source in sorted(by_source):
        rows = by_source[source]
        chosen += rng.sample(rows, min(per_source, len(rows)))
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--per-source", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    engine = Engine(detectors=["forensic_image", "semantic_clip"])
    variants = ("upright", "turned left, no tag", "turned left + EXIF 6",
                "turned right, no tag", "turned right + EXIF 8")
    scores: dict[str, list[float]] = {v: [] for v in variants}
    verdicts: dict[str, list[str]] = {v: [] for v in variants}
    sources: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for i, row in enumerate(pick_real_images(args.manifests, args.per_source, args.seed)):
            try:
                img = Image.open(args.media_root / row["file"]).convert("RGB")
            except (OSError, ValueError):
                continue  # not a still Pillow reads (the manifest's few oddities)
            if min(img.size) < 128:
                continue
            scale = min(1.0, 720 / max(img.size))
            img = img.resize((round(img.width * scale), round(img.height * scale)))
            paths = {v: Path(tmp, f"{i}_{k}.jpg") for k, v in enumerate(variants)}
            img.save(paths["upright"], quality=90)
            # A phone stores the sensor's pixels and tags how to turn them for display:
            # EXIF 6 = turn 90 degrees clockwise (pixels stored turned left), 8 = the other.
            for side, turn, code in (("left", Image.Transpose.ROTATE_90, 6),
                                     ("right", Image.Transpose.ROTATE_270, 8)):
                stored = img.transpose(turn)
                exif = stored.getexif()
                exif[0x0112] = code
                stored.save(paths[f"turned {side}, no tag"], quality=90)
                stored.save(paths[f"turned {side} + EXIF {code}"], quality=90,
                            exif=exif.tobytes())
            results = {v: engine.analyze(p) for v, p in paths.items()}
            if any(r.ai_probability is None for r in results.values()):
                continue
            sources.add(row["source_repo"])
            for v, r in results.items():
                scores[v].append(float(r.ai_probability or 0.0))
                verdicts[v].append(str(r.verdict))
    n = len(scores["upright"])
    print(f"{n} real images from {len(sources)} sources\n")
    print("| copy | mean P(AI) | authentic | uncertain | ai_generated |")
    print("|---|---|---|---|---|")
    for v in variants:
        vs = verdicts[v]
        print(f"| {v} | {np.mean(scores[v]):.3f} | {vs.count('authentic')} | "
              f"{vs.count('uncertain')} | {vs.count('ai_generated')} |")


if __name__ == "__main__":
    main()
