"""How the speech operating line is drawn, and what each way gives on sources no model saw.

The shipped rule draws the line at the 95th percentile of the fused held-out scores of all
real training speech, pooled over files, in the strictest codec condition. A source with
many files weighs as much as its files, and the real side of the training data is partly
demo-page "ground truth" read in a studio, scored higher than the real speech users bring.
This compares three rules, each fitted on a packaged run's held-out scores only:

- ``pooled``: the shipped rule (at most 5 % of real files above, every condition);
- ``source-balanced``: the same with each real file weighted by one over its source's file
  count, so every source weighs the same;
- ``sources``: the lowest line at which at most 10 % of the real sources with 5 files or
  more have over 5 % of their files above it (the issue's per-source target, as a rule);

and reports, for each, the line, and on the never-seen files scored by the same model
(``bench/compare_speech_models.py``'s dump, kept with ``cp
var/cache/compare-speech-0.json ...``): TPR, real FPR and real sources above 5 %, per
condition. Out of fold every rule is judged on the data it was fitted on (optimistic),
the never-seen rows are the test.

    PYTHONPATH=src python bench/eval_speech_line_policies.py --media-root var/corpus \\
        --never-seen var/cache/never-seen-shipped.json var/speech-w07h-relabelled.json $M
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from compare_speech_models import _real_sources_above  # noqa: E402
from compare_speech_oof import held_out_logits  # noqa: E402

from antifake.training.audio import load_audio_items  # noqa: E402
from antifake.training.metrics import sigmoid, threshold_at_fpr  # noqa: E402

FPR = 0.05
MIN_SOURCE_FILES = 5
SOURCE_SHARE = 0.10


def pooled(p: np.ndarray, src: np.ndarray) -> float:
    """At most 5 % of the real files strictly above."""
    return threshold_at_fpr(p, FPR)


def source_balanced(p: np.ndarray, src: np.ndarray) -> float:
    """At most 5 % of the real weight strictly above, each source weighing the same."""
    _, inverse, counts = np.unique(src, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    order = np.argsort(p)[::-1]
    above = np.cumsum(w[order]) / w.sum()  # weight at or above each score, high to low
    k = int(np.searchsorted(above, FPR, side="right"))  # files that may lie above
    return float(p[order][min(k, len(p) - 1)])


def sources_rule(p: np.ndarray, src: np.ndarray) -> float:
    """The lowest line with at most 10 % of the real sources (of >= 5 files) over 5 %."""
    names, counts = np.unique(src, return_counts=True)
    big = names[counts >= MIN_SOURCE_FILES]
    allowed = int(np.floor(SOURCE_SHARE * len(big)))
    # each source's own 95th-percentile line; the line must sit at or above all but
    # `allowed` of them
    own = np.sort([threshold_at_fpr(p[src == s], FPR) for s in big])
    return float(own[len(own) - 1 - allowed])


RULES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "pooled": pooled, "source-balanced": source_balanced, "sources": sources_rule}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--never-seen", type=Path, required=True,
                    help="compare_speech_models dump of the same model on never-seen files")
    ap.add_argument("run", type=Path, help="the packaged run's evaluation.json")
    ap.add_argument("manifests", nargs="+", type=Path, help="the run's manifests")
    args = ap.parse_args()
    run = json.loads(args.run.read_text())
    items = {str(it.path): it for it in load_audio_items(args.manifests, args.media_root)}
    files = run["files"]
    y = np.array([items[f].is_ai for f in files])
    src = np.array([items[f].source for f in files])
    oof = {c: sigmoid(np.asarray(v)) for c, v in held_out_logits(run).items()}
    seen = json.loads(args.never_seen.read_text())
    ny = np.array(seen["is_ai"])
    nsrc = np.array(seen["source"])
    conds = [c for c in oof if c in seen]
    print(f"out of fold: {int((~y).sum())} real files of {len(set(src[~y]))} sources, "
          f"{int(y.sum())} synthetic; never seen: {int((~ny).sum())} real of "
          f"{len(set(nsrc[~ny]))} sources, {int(ny.sum())} synthetic of {len(set(nsrc[ny]))}\n")
    print("| rule | line | condition | out of fold: TPR / real FPR / real sources > 5 % | "
          "never seen: TPR / real FPR / real sources > 5 % |")
    print("|---|---|---|---|---|")
    for name, rule in RULES.items():
        line = max(rule(oof[c][~y], src[~y]) for c in conds)
        for c in conds:
            p, q = oof[c], np.asarray(seen[c], dtype=float)
            cells = []
            for pp, yy, ss in ((p, y, src), (q, ny, nsrc)):
                over = len(_real_sources_above(pp, line, ss, ~yy))
                tpr, fpr = (pp[yy] >= line).mean(), (pp[~yy] >= line).mean()
                cells.append(f"{tpr:.3f} / {100 * fpr:.1f} % / {over} of {len(set(ss[~yy]))}")
            print(f"| {name} | {line:.3f} | {c} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
