"""Held-out-source scores of an ensemble of speech CNNs trained with different seeds or widths.

Each input is the ``--json-out`` of one ``antifake evaluate <audio manifest> ...`` run (or
of :func:`antifake.training.speech_model.run_speech_pipeline`) with the same folds and file
list but another ``TrainConfig`` (seed, width, RawBoost, OC-softmax). The members'
out-of-fold logits are averaged per file and condition, then judged exactly as a single
model is (nested thresholds, per source, per condition:
:func:`antifake.training.speech_model.evaluate_oof`). Prints each member and the ensemble.
Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_speech_ensemble.py ../shared/corpus/extra-audio-manifest.tsv \\
        --media-root var/corpus var/speech-eval.json var/speech-eval-seed1.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from antifake.training.audio import load_audio_items
from antifake.training.speech_model import OutOfFold, evaluate_oof


def _row(name: str, ev: dict[str, Any]) -> str:
    c = ev["conditions"]
    cells = " | ".join(f"{c[k]['auc']:.3f} / {c[k]['tpr']:.3f} / {100 * c[k]['fpr']:.1f} %"
                       for k in c)
    over = sum(1 for r in ev["per_source"] if r["real"] and r["fpr_original"] > 0.05)
    return f"| {name} | {cells} | {over} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("runs", nargs="+", type=Path, help="--json-out files of the members")
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--json-out", type=Path, help="write the ensemble's evaluation here")
    args = ap.parse_args()
    if len(args.runs) < 2:
        raise SystemExit("an ensemble needs at least two runs")
    runs = [json.loads(p.read_text()) for p in args.runs]
    files = runs[0]["files"]
    for p, r in zip(args.runs, runs, strict=True):
        if r["files"] != files or r["folds"] != runs[0]["folds"]:
            raise SystemExit(f"{p}: another file list or fold count than {args.runs[0]}")
    by_path = {str(it.path): it for it in load_audio_items([args.manifest], args.media_root)}
    missing = [f for f in files if f not in by_path]
    if missing:
        raise SystemExit(f"{len(missing)} scored files are not in the manifest, e.g. {missing[0]}")
    items = [by_path[f] for f in files]
    conds = list(runs[0]["oof"])
    header = " | ".join(f"{c}: AUC / TPR / FPR" for c in conds)
    print(f"| model | {header} | real sources > 5 % (original) |")
    print("|---" * (len(conds) + 2) + "|")
    for p, r in zip(args.runs, runs, strict=True):
        oof = OutOfFold(logits={c: np.asarray(r["oof"][c]) for c in conds},
                        family_known=[False] * len(items))
        cfg = r["config"]
        extra = "".join([f", RawBoost p {cfg['rawboost_p']}" if cfg.get("rawboost_p") else "",
                         ", OC-softmax" if cfg.get("one_class") else ""])
        name = f"seed {cfg['seed']}, width {cfg.get('width', 8)}{extra} ({p.name})"
        print(_row(name, evaluate_oof(items, oof)))
    mean = OutOfFold(logits={c: np.mean([np.asarray(r["oof"][c]) for r in runs], axis=0)
                             for c in conds}, family_known=[False] * len(items))
    ev = evaluate_oof(items, mean)
    print(_row(f"mean of {len(runs)} runs", ev))
    if args.json_out:
        args.json_out.write_text(json.dumps(ev, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main()
