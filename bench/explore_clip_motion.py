"""Do the CLIP block tokens' changes between a video's frames add to their mean?

AI video vs real video only, 10 folds by source repository (the folds of
``bench/explore_families.py``), trained on masked + laundered + masked, judged laundered +
masked; AUC, TPR at 5 % FPR (pooled threshold) and Runway AUC. Per video, from the cached
``clipm`` features of its frames (``--max-frames``): ``mean`` (what the shipped probe
effectively scores: a linear probe's mean frame logit is its logit of the mean),
``meanstd`` (mean, per-dimension std over frames and mean absolute frame-to-frame change,
concatenated), ``diff`` (the change alone); with ``mean`` and ``diff`` both asked, also a
late fusion ``z_mean/std + w * z_diff/std``. Usage (repo root, venv active, cache filled)::

    PYTHONPATH=src python bench/explore_clip_motion.py --media-root var/corpus \\
        --manifest ../shared/corpus/manifest.tsv \\
        --manifest ../shared/corpus/extra-video-manifest.tsv \\
        --manifest ../shared/corpus/extra-image-manifest.tsv --max-frames 4 mean meanstd diff
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from explore_families import K, _fold  # noqa: E402

from antifake.training.data import Item, load_manifests  # noqa: E402
from antifake.training.features import FeatureExtractor  # noqa: E402
from antifake.training.metrics import roc_auc  # noqa: E402
from antifake.training.probe import balanced_weights, fit_probe  # noqa: E402

TRAIN = ("masked", "laundered+masked")
EVAL = "laundered+masked"
L2 = {"mean": 0.1, "meanstd": 0.1, "diff": 1.0}


def video_features(fx: FeatureExtractor, cond: str, it: Item, mode: str) -> np.ndarray:
    f = fx.frames_features("clipm", cond, it)
    change = np.abs(np.diff(f, axis=0)).mean(0) if len(f) > 1 else np.zeros(f.shape[1])
    if mode == "mean":
        return f.mean(0)
    if mode == "meanstd":
        return np.concatenate([f.mean(0), f.std(0), change])
    return change


def _report(name: str, y: np.ndarray, runway: np.ndarray, z: np.ndarray) -> None:
    thr = np.quantile(z[~y], 0.95)
    sel = runway | ~y
    print(f"{name}: AUC {roc_auc(y, z):.3f}, TPR@5% {float((z[y] > thr).mean()):.3f}, "
          f"Runway AUC {roc_auc(y[sel], z[sel]):.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modes", nargs="+", choices=sorted(L2))
    ap.add_argument("--manifest", action="append", required=True)
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--max-frames", type=int, default=4)
    args = ap.parse_args()
    items = [it for it in load_manifests(args.manifest, args.media_root).items
             if it.media_type == "video"]
    fx = FeatureExtractor(args.cache_dir, args.max_frames)
    y = np.array([it.is_ai for it in items])
    runway = np.array([it.label.startswith("runway") for it in items])
    fold = _fold(items)
    scores = {}
    for mode in args.modes:
        x_by = {c: np.stack([video_features(fx, c, it, mode) for it in items])
                for c in dict.fromkeys((*TRAIN, EVAL))}
        z = np.zeros(len(items))
        for k in range(K):
            tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
            x = np.concatenate([x_by[c][tr] for c in TRAIN])
            yy = np.concatenate([y[tr]] * len(TRAIN)).astype(int)
            w = balanced_weights([str(v) for v in yy], [items[i].source for i in tr] * len(TRAIN))
            z[te] = fit_probe(x, yy, w, 2, L2[mode]).logits(x_by[EVAL][te])[:, 0]
        scores[mode] = z
        _report(f"{mode} (L2 {L2[mode]})", y, runway, z)
    if "mean" in scores and "diff" in scores:
        a, b = scores["mean"], scores["diff"]
        for wgt in (0.1, 0.2, 0.3, 0.5):
            _report(f"late mean + {wgt} diff", y, runway, a / a.std() + wgt * b / b.std())


if __name__ == "__main__":
    main()
