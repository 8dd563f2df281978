"""Does adding sources help on sources never seen? Before/after on cached features.

Given the *base* manifests (what the shipped models were trained on) and *added* ones (new
sources), for each feature family:

- **before**: a probe fitted on every base file scores the added files (none of their
  sources seen), and the base files get their 10-fold out-of-fold scores (``antifake
  evaluate --split source-10fold``'s folds by source repository);
- **after**: 10-fold out-of-fold scores over base + added together: every added file is
  scored by a probe that saw the *other* added sources but never its own.

Printed per added label, and for the base corpus pooled (so a gain on the new sources can
be weighed against a loss on the old ones): files (sources), AUC against the base real
files of the same media type, and the share flagged at the 5 % real-FPR line of those
base real files' scores (TPR for AI labels, false-positive rate for added real ones). Needs
the feature cache filled for both manifests lists (``antifake evaluate <all manifests>``
with the same ``--max-frames``). Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_added_sources.py --media-root var/corpus \\
        --base ../shared/corpus/manifest.tsv --base ../shared/corpus/extra-video-manifest.tsv \\
        --base ../shared/corpus/extra-image-manifest.tsv \\
        --added data/manifests/commercial-generators.tsv --family clipm --family effl0e \\
        [--json-out var/added.json]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from antifake.training.data import Item, load_manifests
from antifake.training.features import FeatureExtractor
from antifake.training.metrics import roc_auc
from antifake.training.pipeline import TRAIN_CONDITIONS, fit_model, l2_for, loso_scores


def oof(fx: FeatureExtractor, family: str, items: list[Item], cond: str) -> np.ndarray:
    """10-fold out-of-fold logits under ``cond`` (the folds of ``antifake evaluate --split
    source-10fold``), binary probe only."""
    return loso_scores(fx, family, items, eval_conditions=(cond,), split="source-10fold",
                       attribution=False).logits[cond]


def rows_for(items: list[Item], z: np.ndarray,
             is_added: np.ndarray) -> list[tuple[str, int, int, float, float]]:
    """(label, files, sources, AUC, share above the line) per added label and for the base
    AI files pooled. The line is the 95th percentile of the *base* real files' scores of
    the same media type (5 % real FPR on the sources the shipped models know); AUC is
    against those real files (NaN for added real labels: their column is the share of
    them flagged at the line, i.e. their false-positive rate)."""
    out = []
    real = {mt: z[[i for i, it in enumerate(items) if not it.is_ai and not is_added[i]
                   and it.media_type == mt]] for mt in ("video", "image")}
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        if is_added[i]:
            by_label[it.label].append(i)
    groups = sorted(by_label.items())
    for mt in ("video", "image"):
        base_ai = [i for i, it in enumerate(items)
                   if it.is_ai and not is_added[i] and it.media_type == mt]
        if base_ai:
            groups.append((f"base corpus, all AI {mt}", base_ai))
    for label, idx in groups:
        mt = items[idx[0]].media_type
        neg = real[mt]
        pos = z[idx]
        auc = float("nan")
        if items[idx[0]].is_ai:
            y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
            auc = roc_auc(y.astype(bool), np.r_[pos, neg])
        thr = float(np.quantile(neg, 0.95))
        out.append((label, len(idx), len({items[i].source for i in idx}), auc,
                    float((pos > thr).mean())))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", action="append", required=True)
    ap.add_argument("--added", action="append", required=True)
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--max-frames", type=int, default=4)
    ap.add_argument("--family", action="append", default=[])
    ap.add_argument("--condition", default="laundered+masked", help="judged condition")
    ap.add_argument("--json-out", type=Path,
                    help="every file's logit before and after, per family (which files moved)")
    args = ap.parse_args()
    base = load_manifests(args.base, args.media_root).items
    base_keys = {str(it.path) for it in base}
    added = [it for it in load_manifests(args.added, args.media_root).items
             if str(it.path) not in base_keys]
    items = base + added
    is_added = np.r_[np.zeros(len(base), bool), np.ones(len(added), bool)]
    fx = FeatureExtractor(args.cache_dir, args.max_frames)
    dump: dict[str, list[dict[str, object]]] = {}
    for family in args.family or ["clipm"]:
        model = fit_model(fx, family, base, TRAIN_CONDITIONS, attribution=False)
        z_before = np.r_[oof(fx, family, base, args.condition),
                         [model.clip_logit(fx.frames_features(family, args.condition, it))
                          for it in added]]
        z_after = oof(fx, family, items, args.condition)
        print(f"\n{family} (L2 {l2_for(family)}), judged {args.condition}; "
              f"{len(added)} added files from {len({it.source for it in added})} sources")
        print("| added label | files (sources) | AUC before | AUC after | flagged before "
              "| flagged after |")
        print("|---|---|---|---|---|---|")
        res = {name: rows_for(items, z, is_added)
               for name, z in (("before", z_before), ("after", z_after))}
        for b, a in zip(res["before"], res["after"], strict=True):
            print(f"| {b[0]} | {b[1]} ({b[2]}) | {b[3]:.3f} | {a[3]:.3f} | {b[4]:.3f} "
                  f"| {a[4]:.3f} |", flush=True)
        dump[family] = [{"path": str(it.path), "source": it.source, "label": it.label,
                         "added": bool(is_added[i]), "logit_before": float(z_before[i]),
                         "logit_after": float(z_after[i])} for i, it in enumerate(items)]
    if args.json_out:
        args.json_out.write_text(json.dumps(dump, indent=1))


if __name__ == "__main__":
    main()
