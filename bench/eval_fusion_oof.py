"""Verdict rates of the shipped calibrated fusion on out-of-fold detector scores.

Reads the joined out-of-fold table written by ``python -m antifake.training.joint_calibration``
(default ``var/forensic_train/oof_scores_joint.tsv``) and reports, per condition and media
type, how often the fused verdict calls AI and real files ``ai_generated`` / ``authentic`` at
the per-media-type operating points in ``src/antifake/calibration.json``. The fusion's three
parameters were fitted on these same scores, so the rates are slightly optimistic.

    PYTHONPATH=src python bench/eval_fusion_oof.py [TSV]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from antifake.calibration import CalibratedFusion


def main(argv: list[str]) -> int:
    tsv = Path(argv[0]) if argv else Path("var/forensic_train/oof_scores_joint.tsv")
    fusion = CalibratedFusion.load()
    rows = list(csv.DictReader(tsv.open(encoding="utf-8"), delimiter="\t"))
    print("| condition | media | n AI | n real | AI threshold | TPR | FPR | Gen-2 TPR "
          "| AI called authentic | real called authentic |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cond in sorted({r["condition"] for r in rows}):
        for group in ("image", "video"):
            sel = [r for r in rows if r["condition"] == cond and r["group"] == group]
            if not sel:
                continue
            p = np.array([fusion.probability(
                {k: float(r[k]) if r.get(k) else None for k in fusion.coef}) for r in sel])
            y = np.array([int(r["is_ai"]) for r in sel])
            gen2 = np.array([r["label"] == "runway_gen2" for r in sel])
            ai_thr, auth_thr = fusion.thresholds(group)
            gen2_tpr = f"{np.mean(p[gen2] >= ai_thr):.3f}" if gen2.any() else "-"
            print(f"| {cond} | {group} | {int(y.sum())} | {int((1 - y).sum())} | {ai_thr:.3f} "
                  f"| {np.mean(p[y == 1] >= ai_thr):.3f} | {np.mean(p[y == 0] >= ai_thr):.3f} "
                  f"| {gen2_tpr} | {np.mean(p[y == 1] <= auth_thr):.3f} "
                  f"| {np.mean(p[y == 0] <= auth_thr):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
