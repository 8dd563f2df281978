"""Compare feature families quickly: 10 folds by source repository on cached features.

The exploration behind the family table of docs/benchmarks.md ("Feature families"). Each
spec is ``FAMILIES:TRAIN_CONDITIONS:EVAL_CONDITION:L2`` (families and conditions comma
separated; several families are concatenated), or ``late:FAM1,FAM2:TRAIN:EVAL:L2A,L2B:W``
for a late fusion ``W * z1/std(z1) + z2/std(z2)`` of two separately fitted probes.
``--mlp HIDDEN`` fits a 2-layer MLP instead of the linear probe; ``--per-media`` fits one
probe per media type on that type's files only. Prints AUC and TPR at
5 % FPR (pooled threshold) for AI vs real video / image and Runway vs real video. Needs
the feature cache filled (``antifake evaluate ...`` with the same ``--max-frames``).
Usage (repo root, venv active)::

    PYTHONPATH=src python bench/explore_families.py --media-root var/corpus \\
        --manifest ../shared/corpus/manifest.tsv \\
        --manifest ../shared/corpus/extra-video-manifest.tsv \\
        --manifest ../shared/corpus/extra-image-manifest.tsv \\
        effl0e:masked:masked:3 clip_emb:masked:masked:0.3 \\
        late:effl0e,clip_emb:masked:masked:3,0.3:0.5
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from antifake.training.data import Item, load_manifests
from antifake.training.features import FeatureExtractor
from antifake.training.metrics import roc_auc
from antifake.training.probe import balanced_weights, fit_probe

K = 10


def _fold(items: list[Item]) -> np.ndarray:
    return np.asarray([int(hashlib.sha1(it.source.encode()).hexdigest(), 16) % K
                       for it in items])


def _rows(fx: FeatureExtractor, fams: list[str], cond: str, it: Item) -> np.ndarray:
    return np.concatenate([fx.frames_features(f, cond, it) for f in fams], axis=1)


def _fit_mlp(x: np.ndarray, y: np.ndarray, w: np.ndarray, hidden: int):  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(0)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mu) / sd, dtype=torch.float32)
    yt, wt = torch.tensor(y, dtype=torch.float32), torch.tensor(w, dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(x.shape[1], hidden),
                              torch.nn.GELU(), torch.nn.Dropout(0.2), torch.nn.Linear(hidden, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    for _ in range(10):
        perm = torch.randperm(len(xt))
        for b in range(0, len(xt), 256):
            i = perm[b:b + 256]
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                net(xt[i])[:, 0], yt[i], reduction="none") * wt[i]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()

    def score(z: np.ndarray) -> float:
        with torch.no_grad():
            return float(net(torch.tensor((z - mu) / sd, dtype=torch.float32))[:, 0].mean())
    return score


def oof_logits(fx: FeatureExtractor, items: list[Item], fams: list[str], tconds: list[str],
               econd: str, l2: float, mlp: int = 0, per_media: bool = False) -> np.ndarray:
    if per_media:  # one probe per media type, each fitted on that type's files only
        z = np.full(len(items), np.nan)
        for media in ("video", "image"):
            idx = [i for i, it in enumerate(items) if it.media_type == media]
            z[idx] = oof_logits(fx, [items[i] for i in idx], fams, tconds, econd, l2, mlp)
        return z
    fold = _fold(items)
    z = np.full(len(items), np.nan)
    for k in range(K):
        train = [i for i in range(len(items)) if fold[i] != k]
        rows, ys, groups, srcs = [], [], [], []
        for c in tconds:
            for i in train:
                x = _rows(fx, fams, c, items[i])
                rows.append(x)
                it = items[i]
                ys += [int(it.is_ai)] * len(x)
                groups += [f"{int(it.is_ai)}_{it.media_type}"] * len(x)
                srcs += [it.source] * len(x)
        x = np.concatenate(rows)
        w = balanced_weights(groups, srcs)
        if mlp:
            score = _fit_mlp(x, np.asarray(ys), w, mlp)
            for i in np.where(fold == k)[0]:
                z[i] = score(_rows(fx, fams, econd, items[i]))
        else:
            probe = fit_probe(x, np.asarray(ys), w, 2, l2)
            for i in np.where(fold == k)[0]:
                z[i] = float(probe.logits(_rows(fx, fams, econd, items[i]))[:, 0].mean())
    return z


def report(items: list[Item], z: np.ndarray) -> dict[str, float]:
    """AUC and TPR at 5 % FPR (pooled line) per media type, and Runway vs real video AUC;
    files without a score (NaN) are left out, and so is a comparison lacking a side."""
    y = np.asarray([it.is_ai for it in items])
    mt = np.asarray([it.media_type for it in items])
    scored = np.isfinite(z)
    out = {}
    for m in ("video", "image"):
        sel = (mt == m) & scored
        if not (sel & y).any() or not (sel & ~y).any():
            continue
        out[f"{m} AUC"] = round(roc_auc(y[sel], z[sel]), 3)
        thr = np.quantile(z[sel & ~y], 0.95)
        out[f"{m} TPR@5%"] = round(float((z[sel & y] > thr).mean()), 3)
    runway = np.asarray([it.label.startswith("runway") for it in items])
    sel = (mt == "video") & (runway | ~y) & scored
    if (sel & y).any() and (sel & ~y).any():
        out["Runway AUC"] = round(roc_auc(y[sel], z[sel]), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--manifest", action="append", required=True)
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--max-frames", type=int, default=2)
    ap.add_argument("--mlp", type=int, default=0, help="hidden units of an MLP (0: linear)")
    ap.add_argument("--per-media", action="store_true",
                    help="fit one probe per media type on its own files (default: one for both)")
    args = ap.parse_args()
    items = load_manifests(args.manifest, args.media_root).items
    fx = FeatureExtractor(args.cache_dir, args.max_frames)
    for spec in args.specs:
        parts = spec.split(":")
        if parts[0] == "late":
            fams, tconds, econd = parts[1].split(","), parts[2].split(","), parts[3]
            l2s = [float(v) for v in parts[4].split(",")]
            weight = float(parts[5])
            z1 = oof_logits(fx, items, [fams[0]], tconds, econd, l2s[0])
            z2 = oof_logits(fx, items, [fams[1]], tconds, econd, l2s[1])
            z = weight * z1 / np.std(z1) + z2 / np.std(z2)
        else:
            fams, tconds = parts[0].split(","), parts[1].split(",")
            z = oof_logits(fx, items, fams, tconds, parts[2], float(parts[3]), args.mlp,
                           args.per_media)
        print(spec, report(items, z), flush=True)


if __name__ == "__main__":
    main()
