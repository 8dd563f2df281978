"""Does averaging the Whisper heads of several seeds help on never-seen sources?

Reads two or more ``--json-out`` files of ``bench/explore_whisper_finetune.py`` that differ
only in ``--seed`` (same arms, never-seen files and conditions) and prints, per arm and
codec condition, each seed's AUC and TPR at the line that flags 5 % of the real files, and
the same for the mean of the seeds' logits (what ``antifake train
--speech-whisper-head-seeds N`` ships). The labels are read from the files' folders, the
``materialize.py`` layout (``<media root>/<label>/<file>``).

    PYTHONPATH=src python bench/average_head_seeds.py var/whisper-ft.json var/whisper-ft-s1.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from antifake.training.audio import speech_label
from antifake.training.metrics import roc_auc


def _auc_tpr(y: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """AUC and the share of synthetic files above the line 5 % of real files pass (the
    line of explore_whisper_finetune)."""
    line = np.quantile(z[~y], 0.95)
    return roc_auc(y, z), float((z[y] > line).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="explore_whisper_finetune json outputs")
    args = ap.parse_args()
    if len(args.runs) < 2:
        ap.error("give the outputs of two seeds or more")
    runs = [json.loads(p.read_text()) for p in args.runs]
    files = runs[0]["files"]
    if any(r["files"] != files for r in runs[1:]):
        ap.error("the runs scored different files")
    labels = [speech_label(Path(f).parent.name) for f in files]
    if any(lab is None for lab in labels):
        ap.error("a file's folder is not a speech label (real_speech / ai_speech_<family>)")
    y = np.array([lab[0] for lab in labels if lab is not None])
    arms = [a for a in runs[0]["scores"] if all(a in r["scores"] for r in runs[1:])]
    seeds = " / ".join(str(r.get("seed", "?")) for r in runs)
    print(f"{int(y.sum())} synthetic and {int((~y).sum())} real files; seeds {seeds}\n")
    print("| arm | condition | AUC, each seed | AUC, mean logit | TPR at 5 %, each seed "
          "| TPR, mean logit |\n|---|---|---|---|---|---|")
    for arm in arms:
        for cond in runs[0]["scores"][arm]:
            zs = [np.asarray(r["scores"][arm][cond], np.float64) for r in runs]
            each = [_auc_tpr(y, z) for z in zs]
            mean_auc, mean_tpr = _auc_tpr(y, np.mean(zs, axis=0))
            print(f"| {arm} | {cond} | {' / '.join(f'{a:.3f}' for a, _ in each)} | "
                  f"{mean_auc:.3f} | {' / '.join(f'{t:.3f}' for _, t in each)} | "
                  f"{mean_tpr:.3f} |")


if __name__ == "__main__":
    main()
