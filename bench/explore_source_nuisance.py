"""Does removing the directions along which *sources* differ help CLIP block features carry
to sources no model saw?

Why: the probe behind ``semantic_clip`` is fitted on ~110 video sources. Every source is
all-AI or all-real, so whatever makes one source's clips alike - its scenes, camera, frame
size, the encoder of its page - can stand in for the label, and on a new source that
shortcut fails. Within one class, the differences between the sources' mean features are
exactly such nuisance: this bench estimates them on the training folds (each source's mean
minus its class's mean of source means; principal directions of those residuals) and
projects the top ``k`` of them out of every feature vector before the probe is fitted
(a nuisance-subspace projection, in the spirit of within-class "nuisance attribute
projection" in speaker verification). ``k = 0`` is the plain probe.

Features: the class token of the 12 CLIP blocks (``clipm``, 9,216 values), averaged over a
video's frames at 2 frames/s over its first 6 s (the frames ``semantic_clip`` encodes),
from the ``bench/eval_restrav.py`` cache (``var/restrav``: training videos as the
``laundered+masked`` condition, evaluation videos as the engine's judged copies; missing
entries are encoded first). Video only.

Reports, per ``k`` and L2: out of fold (10 folds by source repository, the folds of
``bench/explore_families.py``; the projection estimated inside each fold's training part)
AUC and TPR at 5 % FPR of AI vs real video and Runway vs real video; then a probe fitted on
all training videos, on the evaluation manifests (sources in no training manifest): AUC,
TPR at the line that flags 5 % of the training videos' out-of-fold real scores, and the
share of never-seen real videos above that line.

Usage (repo root, venv active): the ``--media-root``, ``--train`` and ``--unseen`` of
``bench/eval_restrav.py`` (whose cache this reads), ``data/manifests/real-video-2.tsv``
added to ``--unseen``, then ``--k 0 4 8 16 32 64 --l2 0.1`` (and ``--within real ai``).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_restrav import _key, _tpr_at, embedded_videos, video_set_arguments  # noqa: E402
from explore_families import K, _fold  # noqa: E402

from antifake.clip_encoder import LAYER_OFFSET, LAYERS, WIDTH  # noqa: E402
from antifake.training.data import Item  # noqa: E402
from antifake.training.metrics import roc_auc  # noqa: E402
from antifake.training.probe import balanced_weights, fit_probe  # noqa: E402


def video_features(items: list[Item], kind: str) -> np.ndarray:
    """(n, 9216) mean block class tokens over the 2 frames/s sample; NaN rows where the
    cache has no frame."""
    out = np.full((len(items), LAYERS * WIDTH), np.nan, np.float32)
    for i, it in enumerate(items):
        p = _key(it.path, kind)
        if not p.exists():
            continue
        e = np.load(p)["slow"].astype(np.float32)
        if len(e):
            out[i] = e[:, LAYER_OFFSET:LAYER_OFFSET + LAYERS * WIDTH].mean(0)
    return out


def nuisance_basis(x: np.ndarray, y: np.ndarray, sources: list[str], k: int,
                   within: str = "both") -> np.ndarray:
    """(k, d) orthonormal directions of the between-source spread inside each class
    (``within``: ``both`` classes, only the ``real`` or only the ``ai`` sources)."""
    if k == 0:
        return np.zeros((0, x.shape[1]), np.float32)
    means, cls = [], []
    for s in sorted(set(sources)):
        sel = np.asarray([v == s for v in sources])
        means.append(x[sel].mean(0))
        cls.append(int(y[sel][0]))
    m, c = np.asarray(means), np.asarray(cls)
    for v in (0, 1):
        m[c == v] -= m[c == v].mean(0)
    if within != "both":
        m = m[c == (1 if within == "ai" else 0)]
    _, _, vt = np.linalg.svd(m, full_matrices=False)
    return vt[:k].astype(np.float32)


def fit_predict(xtr: np.ndarray, ytr: np.ndarray, srcs: list[str], xte: np.ndarray,
                k: int, l2: float, within: str = "both") -> np.ndarray:
    """Logits of ``xte`` from a probe fitted on ``xtr`` after projecting out ``k`` nuisance
    directions estimated on ``xtr`` (standardised with ``xtr``'s statistics first)."""
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a, b = (xtr - mu) / sd, (xte - mu) / sd
    basis = nuisance_basis(a, ytr, srcs, k, within)
    if len(basis):
        a = a - (a @ basis.T) @ basis
        b = b - (b @ basis.T) @ basis
    w = balanced_weights([str(v) for v in ytr], srcs)
    return np.asarray(fit_probe(a, ytr, w, 2, l2).logits(b)[:, 0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    video_set_arguments(ap)
    ap.add_argument("--k", type=int, nargs="+", default=[0, 8, 16, 32])
    ap.add_argument("--l2", type=float, nargs="+", default=[0.1])
    ap.add_argument("--within", nargs="+", default=["both"], choices=["both", "real", "ai"],
                    help="whose between-source spread is projected out")
    args = ap.parse_args()
    train, unseen = embedded_videos(args)

    xtr_all = video_features(train, "laundered+masked")
    keep = np.isfinite(xtr_all).all(1)
    train = [it for it, ok in zip(train, keep, strict=True) if ok]
    x = xtr_all[keep]
    y = np.asarray([int(it.is_ai) for it in train])
    src = [it.source for it in train]
    runway = np.asarray(["runway" in it.label for it in train])
    folds = _fold(train)
    xu_all = video_features(unseen, "judged") if unseen else np.zeros((0, x.shape[1]))
    ukeep = np.isfinite(xu_all).all(1)
    unseen = [it for it, ok in zip(unseen, ukeep, strict=True) if ok]
    xu = xu_all[ukeep]
    yu = np.asarray([int(it.is_ai) for it in unseen])
    n_src = {v: len({s for s, t in zip(src, y, strict=True) if t == v}) for v in (0, 1)}
    print(f"training: {int(y.sum())} AI videos ({n_src[1]} sources), {int((1 - y).sum())} "
          f"real ({n_src[0]} sources)", flush=True)
    if len(unseen):
        us = defaultdict(set)
        for it in unseen:
            us[int(it.is_ai)].add(it.source)
        print(f"never seen: {int(yu.sum())} AI videos ({len(us[1])} sources), "
              f"{int((1 - yu).sum())} real ({len(us[0])} sources)", flush=True)

    for within, l2, k in ((w, v, n) for w in args.within for v in args.l2 for n in args.k):
        z = np.zeros(len(y))
        for f in range(K):
            te = folds == f
            tr = ~te
            z[te] = fit_predict(x[tr], y[tr], [src[i] for i in np.where(tr)[0]], x[te],
                                k, l2, within)
        rw = runway | (y == 0)
        line = float(np.quantile(z[y == 0], 0.95))
        msg = (f"{within} L2 {l2:g} k {k:2d}: OOF AUC {roc_auc(y, z):.3f} "
               f"TPR@5% {_tpr_at(y, z):.3f} Runway {roc_auc(y[rw], z[rw]):.3f}")
        if len(unseen):
            zu = fit_predict(x, y, src, xu, k, l2, within)
            msg += (f" | never seen AUC {roc_auc(yu, zu):.3f}, at the OOF line: TPR "
                    f"{float((zu[yu == 1] > line).mean()):.3f}, real flagged "
                    f"{float((zu[yu == 0] > line).mean()):.3f}; TPR@5% of never-seen real "
                    f"{_tpr_at(yu, zu):.3f}")
        print(msg, flush=True)


if __name__ == "__main__":
    main()
