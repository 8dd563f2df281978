"""Calibrate the splicing detector's evidence thresholds on the corpus.

    python -m antifake.detectors.splicing.calibrate --corpus ../shared/corpus [--no-save]

Untouched media: every ``real_image`` plus the first frame of every ``real_video`` (also
after a JPEG q=75 round trip, as uploaded images usually are). Synthetic splices: for each
real image, a rectangle (10-25 % of the area, random place) replaced by (a) the same
content with Gaussian noise sigma 6 added, (b) the same content JPEG-compressed at q=40
and blurred by a 2x down/up-scale (another processing history), (c) the co-located content
of another real image (a foreign source); each then saved as JPEG q=90. Writes
``calibration.json`` (low = 95th, high = 99.5th percentile of evidence on untouched media)
and prints the detection rate of splices at ``low`` and the mean heatmap inside/outside.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from antifake.detectors.splicing.features import (
    heatmap_from_map,
    robust_outlier_map,
    strongest_region,
    to_grey,
)

DEFAULT_CORPUS = Path("../shared/corpus")


def jpeg(rgb: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=q)
    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def make_splice(img: np.ndarray, donor: np.ndarray, kind: str,
                rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Return the spliced image and the pasted rectangle (x0, y0, x1, y1)."""
    h, w = img.shape[:2]
    frac = rng.uniform(0.10, 0.25)
    rh, rw = int(h * np.sqrt(frac)), int(w * np.sqrt(frac))
    y0, x0 = int(rng.integers(0, h - rh)), int(rng.integers(0, w - rw))
    out = img.copy()
    if kind == "noise":
        patch: np.ndarray = img[y0:y0 + rh, x0:x0 + rw].astype(np.float32)
        patch = patch + rng.normal(0, 6.0, patch.shape[:2])[..., None]
    elif kind == "history":
        small = cv2.resize(jpeg(img, 40), (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        patch = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)[y0:y0 + rh, x0:x0 + rw]
    else:  # foreign
        d = cv2.resize(donor, (w, h), interpolation=cv2.INTER_AREA)
        patch = d[y0:y0 + rh, x0:x0 + rw]
    out[y0:y0 + rh, x0:x0 + rw] = np.clip(patch, 0, 255).astype(np.uint8)
    return jpeg(out, 90), (x0, y0, x0 + rw, y0 + rh)


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            return np.asarray(f.to_ndarray(format="rgb24"))
    raise ValueError(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    with open(args.corpus / "manifest.tsv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    images = [np.array(Image.open(args.corpus / r["file"]).convert("RGB"))
              for r in rows if r["label"] == "real_image"]
    frames = [first_frame(args.corpus / r["file"]) for r in rows if r["label"] == "real_video"]

    def strength(rgb: np.ndarray) -> float:
        return strongest_region(robust_outlier_map(to_grey(rgb))).strength

    real = [strength(x) for x in images + frames] + [strength(jpeg(x, 75)) for x in images]
    real_arr = np.array(real)
    low, high = np.percentile(real_arr, 95), np.percentile(real_arr, 99.5)
    rng = np.random.default_rng(0)
    report: dict[str, object] = {
        "untouched": {"n": len(real), "median": round(float(np.median(real_arr)), 2),
                      "p95_low": round(float(low), 2), "p99.5_high": round(float(high), 2)},
    }
    for kind in ("noise", "history", "foreign"):
        ev, inside, outside = [], [], []
        for i, img in enumerate(images):
            sp, (x0, y0, x1, y1) = make_splice(img, images[(i + 7) % len(images)], kind, rng)
            om = robust_outlier_map(to_grey(sp))
            ev.append(strongest_region(om).strength)
            hm = heatmap_from_map(om)
            m = np.zeros(hm.shape, bool)
            m[y0:y1, x0:x1] = True
            inside.append(float(hm[m].mean()))
            outside.append(float(hm[~m].mean()))
        e = np.array(ev)
        report[kind] = {
            "n": len(e), "median_evidence": round(float(np.median(e)), 2),
            "detected_at_low": round(float((e > low).mean()), 3),
            "heat_inside_gt_outside": round(float(np.mean(np.array(inside) > outside)), 3),
            "mean_heat_inside": round(float(np.mean(inside)), 3),
            "mean_heat_outside": round(float(np.mean(outside)), 3),
        }
    print(json.dumps(report, indent=1))
    if not args.no_save:
        out = Path(__file__).with_name("calibration.json")
        out.write_text(json.dumps({
            "low": round(float(low), 3), "high": round(float(high), 3),
            "command": "python -m antifake.detectors.splicing.calibrate "
                       "--corpus ../shared/corpus",
            "report": report,
        }, indent=1) + "\n", encoding="utf-8")
        print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
