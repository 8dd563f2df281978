"""The speech CNN against the CNN + Whisper fusion, from one fused run's out-of-fold scores.

Reads the ``--json-out`` of an ``antifake evaluate <audio manifests> ...`` run that fitted
the Whisper fusion (its ``whisper.component_oof.cnn`` and ``whisper.fused_oof`` hold every
file's held-out logit per codec condition, in the order of ``files``) and prints:

1. per condition, AUC and the TPR of each model at equal pooled real FPR (one line on all
   out-of-fold real scores of the condition: 3 / 4 / 5 % by default, ``--fprs``);
2. the fused threshold that flags as many real files out of fold as the CNN does at its
   own operating threshold (``cnn_threshold``), per condition and the strictest of them:
   the line at which the fusion costs no more false positives than the shipped CNN;
3. each model at its operating rule (strictest per-condition 95th percentile, nested per
   source, :func:`antifake.training.speech_model.evaluate_oof`): the real sources with a
   false positive in any condition, per condition.

Usage (repo root, venv active)::

    PYTHONPATH=src python bench/compare_speech_fusion.py var/speech-eval-07.json \\
        --media-root var/corpus <the manifests of the run>
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from antifake.training.audio import load_audio_items
from antifake.training.metrics import roc_auc, sigmoid, threshold_at_fpr
from antifake.training.speech_model import OutOfFold, evaluate_oof


def matched_threshold(reference: np.ndarray, ref_thr: float, other: np.ndarray) -> float:
    """The threshold on ``other`` scores of real files above which as many of them lie as
    ``reference`` scores lie above ``ref_thr`` (the same files, another model)."""
    n_over = int((reference > ref_thr).sum())
    return float(np.sort(other)[::-1][n_over]) if n_over < len(other) else float(other.min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_json", type=Path)
    ap.add_argument("manifests", type=Path, nargs="+")
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--fprs", default="0.03,0.04,0.05")
    args = ap.parse_args()
    run: dict[str, Any] = json.loads(args.run_json.read_text("utf-8"))
    if "whisper" not in run:
        raise SystemExit(f"{args.run_json}: no Whisper fusion in this run")
    by_path = {str(it.path): it for it in load_audio_items(args.manifests, args.media_root)}
    missing = [f for f in run["files"] if f not in by_path]
    if missing:
        raise SystemExit(f"{len(missing)} scored files are in none of the manifests, "
                         f"e.g. {missing[0]}")
    items = [by_path[f] for f in run["files"]]
    y = np.array([it.is_ai for it in items])
    models = {"CNN": run["whisper"]["component_oof"]["cnn"],
              "fused": run["whisper"]["fused_oof"]}
    probs = {m: {c: sigmoid(np.asarray(v)) for c, v in oof.items()} for m, oof in models.items()}
    conds = list(probs["fused"])
    fprs = [float(f) for f in args.fprs.split(",")]
    print(f"{len(items)} files, {len({it.source for it in items})} sources "
          f"({int(y.sum())} synthetic, {int((~y).sum())} real); {args.run_json}\n")
    head = " | ".join(f"TPR @ {100 * f:g} % FPR" for f in fprs)
    print(f"| condition | model | AUC | {head} |\n|---|---|---|" + "---|" * len(fprs))
    for c in conds:
        for m in models:
            p = probs[m][c]
            cells = " | ".join(f"{(p[y] > threshold_at_fpr(p[~y], f)).mean():.3f}" for f in fprs)
            print(f"| {c} | {m} | {roc_auc(y.astype(int), p):.3f} | {cells} |")

    cnn_thr = float(run["cnn_threshold"])
    print(f"\nfused threshold flagging as many real files as the CNN at {cnn_thr:.3f} "
          f"(the fused run's own line: {float(run['threshold']):.3f})")
    print("| condition | real flagged (CNN) | matched fused threshold | CNN TPR | fused TPR |\n"
          "|---|---|---|---|---|")
    matched = {}
    for c in conds:
        pc, pf = probs["CNN"][c], probs["fused"][c]
        matched[c] = matched_threshold(pc[~y], cnn_thr, pf[~y])
        print(f"| {c} | {int((pc[~y] > cnn_thr).sum())} / {int((~y).sum())} | "
              f"{matched[c]:.3f} | {(pc[y] > cnn_thr).mean():.3f} | "
              f"{(pf[y] > matched[c]).mean():.3f} |")
    strict = max(matched.values())
    print(f"strictest matched threshold {strict:.3f}: fused TPR "
          + ", ".join(f"{c} {(probs['fused'][c][y] > strict).mean():.3f}" for c in conds))

    print("\nreal sources with a false positive at the operating rule (nested per source); "
          "flagged / real files per condition, CNN -> fused")
    evs = {m: evaluate_oof(items, OutOfFold(
        logits={c: np.asarray(v) for c, v in models[m].items()},
        family_known=[False] * len(items))) for m in models}
    print("| source | real files | " + " | ".join(conds) + " |\n|---|---|" + "---|" * len(conds))
    rows = {m: {r["source"]: r for r in ev["per_source"] if r["real"]} for m, ev in evs.items()}
    over = {m: 0 for m in models}
    for s in sorted(rows["CNN"]):
        a, b = rows["CNN"][s], rows["fused"][s]
        n = a["real"]
        fa = [round(a[f"fpr_{c}"] * n) for c in conds]
        fb = [round(b[f"fpr_{c}"] * n) for c in conds]
        for m, r in (("CNN", a), ("fused", b)):
            over[m] += any(r[f"fpr_{c}"] > 0.05 for c in conds)
        if any(fa) or any(fb):
            print(f"| {s} | {n} | " + " | ".join(f"{u} -> {v}" for u, v in zip(fa, fb, strict=True))
                  + " |")
    print(f"\nreal sources above 5 % in any condition: CNN {over['CNN']}, fused {over['fused']} "
          f"of {len(rows['CNN'])}")


if __name__ == "__main__":
    main()
