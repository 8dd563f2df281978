"""Train (and cross-validate) the temporal detector's per-pair model on the corpus.

    python -m antifake.detectors.temporal.train --corpus ../shared/corpus [--loso] [--out PATH]

Data: every video of ``manifest.tsv`` (AI = any generator label, real = ``real_video``), as
the original file and as a laundered copy (H.264 CRF 28, <= 720p), with frame pairs at gap 1
and - to simulate low frame rates - at gap round(fps / 8). Features are cached under
``$ANTIFAKE_CACHE`` (default /tmp/antifake_cache); laundered copies too, never in the repo.

Weighting removes the corpus' worst shortcut: AI clips in the corpus move much less than the
real (DAVIS-style) clips, so pairs are re-weighted so that real and AI have the same weight
in every motion bin. The model then has to judge consistency *given* the motion. Each clip
counts once (its pairs share its weight) and large sources are damped by sqrt(n).

``--loso`` reports leave-one-source-out AUC (clip score = mean pair logit) on the held-out
source's originals and laundered copies, pooled over all folds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from antifake.detectors.temporal.corpus import (
    DEFAULT_CACHE,
    DEFAULT_CORPUS,
    Clip,
    cached_clip_features,
    clip_fps,
    load_video_clips,
)
from antifake.detectors.temporal.features import FEATURE_NAMES
from antifake.detectors.temporal.model import PairModel, expand, expanded_names, fit_logistic

TRAIN_VARIANTS = ("orig", "crf28")
EVAL_VARIANTS = ("orig", "crf28")
MOTION_BINS = np.array([-np.inf, 0.1, 0.25, 0.5, 0.8, 1.2, 1.7, 2.3, np.inf])  # log1p(px)
REFERENCE_FEATURES = ("warp_err_norm", "res_flicker", "fb_err", "res_energy_jump",
                      "brightness_jump")
L2 = 0.02


@dataclass
class Block:
    """The pairs of one clip under one variant and pair gap."""

    clip: Clip
    variant: str
    gap: int
    feats: np.ndarray  # (n, F) raw


def load_blocks(corpus: Path, cache: Path, variants: tuple[str, ...], with_gaps: bool,
                log: bool = True) -> list[Block]:
    """Features for every clip x variant x gap (computed once, then read from the cache)."""
    blocks = []
    clips = load_video_clips(corpus)
    t0 = time.time()
    for k, clip in enumerate(clips):
        fps = clip_fps(corpus / clip.file)
        gaps = [1]
        g = max(1, round(fps / 8))
        if with_gaps and g > 1:
            gaps.append(g)
        for variant in variants:
            for gap in gaps:
                f = cached_clip_features(corpus, cache, clip, variant, gap)
                if len(f):
                    blocks.append(Block(clip, variant, gap, f))
        if log and k % 50 == 0:
            print(f"  features {k}/{len(clips)} ({time.time() - t0:.0f} s)", file=sys.stderr)
    return blocks


def _weights(blocks: list[Block]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack blocks into (X raw, y, w) with clip/source/motion balancing (module doc)."""
    per_source = Counter((b.clip.source_repo, b.clip.label) for b in blocks)
    xs, ys, ws = [], [], []
    for b in blocks:
        n_src = per_source[(b.clip.source_repo, b.clip.label)]
        xs.append(b.feats)
        ys.append(np.full(len(b.feats), b.clip.label, dtype=np.float64))
        ws.append(np.full(len(b.feats), 1.0 / len(b.feats) / np.sqrt(n_src)))
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    w = np.concatenate(ws)
    bins = np.digitize(x[:, 0], MOTION_BINS[1:-1])
    for b in np.unique(bins):
        sel = bins == b
        w_real = w[sel & (y == 0)].sum()
        w_ai = w[sel & (y == 1)].sum()
        if w_real == 0 or w_ai == 0:
            w[sel] = 0.0  # a motion range only one class has teaches only the shortcut
            continue
        total = w_real + w_ai
        w[sel & (y == 0)] *= total / 2 / w_real
        w[sel & (y == 1)] *= total / 2 / w_ai
    return x, y, w


def fit(blocks: list[Block], l2: float = L2) -> PairModel:
    """Fit the per-pair model on ``blocks``."""
    x, y, w = _weights(blocks)
    keep = w > 0
    mean, scale, weights, bias = fit_logistic(expand(x[keep]), y[keep], w[keep], l2=l2)
    return PairModel(expanded_names(), mean, scale, weights, bias, meta={})


def reference_stats(blocks: list[Block]) -> dict[str, Any]:
    """Median of interpretable features on real footage per motion bin (for evidence)."""
    real = np.concatenate([b.feats for b in blocks if b.clip.label == 0 and b.gap == 1])
    bins = np.digitize(real[:, 0], MOTION_BINS[1:-1])
    out: dict[str, Any] = {"motion_bin_edges": MOTION_BINS[1:-1].tolist(), "median": {}}
    for name in REFERENCE_FEATURES:
        i = FEATURE_NAMES.index(name)
        med = []
        for b in range(len(MOTION_BINS) - 1):
            vals = real[bins == b, i]
            med.append(float(np.median(vals)) if len(vals) >= 20 else float(np.median(real[:, i])))
        out["median"][name] = med
    return out


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve (ties count half)."""
    y = np.asarray(y)
    s = np.asarray(s, dtype=np.float64)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def motion_stratified_auc(y: np.ndarray, s: np.ndarray, motion: np.ndarray,
                          n_bins: int = 4) -> float:
    """AUC computed within clip-motion quantile bins, averaged weighted by pairs count.

    Pooled AUC can be won by "AI moves less" alone; this one cannot.
    """
    edges = np.quantile(motion, np.linspace(0, 1, n_bins + 1)[1:-1])
    bins = np.digitize(motion, edges)
    total, acc = 0.0, 0.0
    for b in range(n_bins):
        sel = bins == b
        n_pos, n_neg = int((y[sel] == 1).sum()), int((y[sel] == 0).sum())
        if n_pos and n_neg:
            acc += auc(y[sel], s[sel]) * n_pos * n_neg
            total += n_pos * n_neg
    return acc / total if total else float("nan")


def clip_score(model: PairModel, feats: np.ndarray) -> float:
    """Clip-level log-odds: the mean of the per-pair logits (as the detector does)."""
    return float(np.mean(model.logits(feats)))


def loso(blocks: list[Block], l2: float = L2) -> dict[str, Any]:
    """Leave-one-source-out evaluation; returns pooled AUCs and per-source mean scores."""
    sources = sorted({b.clip.source_repo for b in blocks})
    scores: dict[str, list[tuple[int, float, str, float]]] = defaultdict(list)
    for src in sources:
        train = [b for b in blocks if b.clip.source_repo != src]
        model = fit(train, l2=l2)
        for b in blocks:
            if b.clip.source_repo == src and b.gap == 1 and b.variant in EVAL_VARIANTS:
                scores[b.variant].append(
                    (b.clip.label, clip_score(model, b.feats), src, float(b.feats[:, 0].mean()))
                )
    result: dict[str, Any] = {}
    for variant, rows in scores.items():
        y = np.array([r[0] for r in rows])
        s = np.array([r[1] for r in rows])
        motion = np.array([r[3] for r in rows])
        per_source = {}
        for src in sources:
            sel = np.array([r[2] == src for r in rows])
            if sel.any():
                p = 1 / (1 + np.exp(-s[sel]))
                per_source[src] = {
                    "n_real": int((y[sel] == 0).sum()), "n_ai": int((y[sel] == 1).sum()),
                    "mean_p": round(float(p.mean()), 3),
                }
        p_all = 1 / (1 + np.exp(-s))
        result[variant] = {
            "auc": round(auc(y, s), 4),
            "n_real": int((y == 0).sum()),
            "n_ai": int((y == 1).sum()),
            "tpr_at_p0.5": round(float((p_all[y == 1] >= 0.5).mean()), 3),
            "fpr_at_p0.5": round(float((p_all[y == 0] >= 0.5).mean()), 3),
            "motion_stratified_auc": round(motion_stratified_auc(y, s, motion), 4),
            "baseline_auc_low_motion_only": round(auc(y, -motion), 4),
            "per_source": per_source,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("model.json"))
    ap.add_argument("--loso", action="store_true", help="also run leave-one-source-out CV")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--l2", type=float, default=L2)
    args = ap.parse_args(argv)
    cv2.setNumThreads(2)

    blocks = load_blocks(args.corpus, args.cache, TRAIN_VARIANTS, with_gaps=True)
    print(f"{len(blocks)} clip blocks, {sum(len(b.feats) for b in blocks)} pairs",
          file=sys.stderr)
    meta: dict[str, Any] = {
        "trained_on": "antifake corpus (manifest.tsv videos), variants "
                      + "+".join(TRAIN_VARIANTS) + ", gaps 1 and round(fps/8)",
        "n_clips": len({b.clip.file for b in blocks}),
        "l2": args.l2,
        "command": "python -m antifake.detectors.temporal.train --corpus ../shared/corpus"
                   + (" --loso" if args.loso else ""),
    }
    if args.loso:
        cv = loso(blocks, l2=args.l2)
        meta["loso"] = {v: {k: r[k] for k in r if k != "per_source"} for v, r in cv.items()}
        print(json.dumps(cv, indent=1))
    model = fit(blocks, l2=args.l2)
    model.meta = {**meta, "reference_real": reference_stats(blocks)}
    top = np.argsort(-np.abs(model.weights))[:8]
    print("largest weights:", ", ".join(
        f"{model.feature_names[i]}={model.weights[i]:+.2f}" for i in top), file=sys.stderr)
    if not args.no_save:
        model.save(args.out)
        print(f"saved {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
