"""Two packaged speech runs compared out of fold, on the files both had and on those only
the second had.

Each run's ``evaluation.json`` (written by ``antifake train`` beside the model) holds its
file list, its line (``threshold``) and, for a Whisper run, the fused held-out logits of
every file and condition (``whisper.fused_oof``); the CNN's (``oof``) otherwise. Labels
and sources come from the manifests. Each row: AUC / TPR / real FPR at the run's own line
/ real sources with over 5 % of their files at or above it.

    PYTHONPATH=src python bench/compare_speech_oof.py --media-root var/corpus \
        var/speech-w07b/evaluation.json var/speech-w08/evaluation.json <manifests of the second>
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from compare_speech_models import _real_sources_above  # noqa: E402

from antifake.training.audio import load_audio_items  # noqa: E402
from antifake.training.metrics import roc_auc, sigmoid  # noqa: E402


def held_out_logits(run: dict[str, Any]) -> dict[str, list[float]]:
    """condition -> held-out logits of the run's clip score (fused where there is one)."""
    if "whisper" in run:
        return run["whisper"]["fused_oof"]
    return run["oof"]


def row(files: list[str], logits: dict[str, list[float]], thr: float, keep: set[str],
        is_ai: dict[str, bool], source: dict[str, str]) -> dict[str, str]:
    """condition -> 'AUC / TPR / FPR / sources above 5 % of real sources' on ``keep``."""
    m = np.array([f in keep for f in files])
    y = np.array([is_ai[f] for f in files])[m]
    src = np.array([source[f] for f in files])[m]
    out = {}
    for c, v in logits.items():
        p = sigmoid(np.asarray(v))[m]
        over = len(_real_sources_above(p, thr, src, ~y))
        out[c] = (f"{roc_auc(y.astype(int), p):.3f} / {(p[y] >= thr).mean():.3f} / "
                  f"{100 * (p[~y] >= thr).mean():.1f} % / {over} of {len(set(src[~y]))}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("first", type=Path, help="evaluation.json of the first run")
    ap.add_argument("second", type=Path, help="evaluation.json of the second run")
    ap.add_argument("manifests", nargs="+", type=Path,
                    help="the second run's manifests (labels and sources)")
    args = ap.parse_args()
    runs = [json.loads(p.read_text()) for p in (args.first, args.second)]
    items = {str(it.path): it for it in load_audio_items(args.manifests, args.media_root)}
    is_ai = {f: it.is_ai for f, it in items.items()}
    source = {f: it.source for f, it in items.items()}
    missing = [f for run in runs for f in run["files"] if f not in items]
    if missing:
        raise SystemExit(f"{len(missing)} files of the runs are in none of the manifests, "
                         f"e.g. {missing[0]}")
    shared = set(runs[0]["files"]) & set(runs[1]["files"])
    added = set(runs[1]["files"]) - shared
    cols = [
        (f"first, {len(shared)} shared files", runs[0], shared),
        ("second, same files", runs[1], shared),
        (f"second, {len(added)} files only it had", runs[1], added),
        (f"second, all {len(runs[1]['files'])}", runs[1], set(runs[1]["files"]) if added
         else set()),
    ]
    cells = [row(run["files"], held_out_logits(run), float(run["threshold"]), keep, is_ai,
                 source) for _, run, keep in cols if keep]
    names = [name for name, _, keep in cols if keep]
    print(f"lines: first {runs[0]['threshold']:.3f}, second {runs[1]['threshold']:.3f}\n")
    print("| condition | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for c in cells[0]:
        print(f"| {c} | " + " | ".join(col.get(c, "-") for col in cells) + " |")


if __name__ == "__main__":
    main()
