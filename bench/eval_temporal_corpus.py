"""Leave-one-source-out evaluation of the temporal detector on the labelled corpus.

    PYTHONPATH=src python bench/eval_temporal_corpus.py --corpus ../shared/corpus

AI video (every generator label) vs real video, clips grouped by ``source_repo``: for each
source, the model is retrained without it (same recipe as ``train.py``: originals +
laundered copies, gaps 1 and round(fps/8), motion-balanced weights) and scores its clips,
on the originals and on laundered copies (H.264 CRF 28, <= 720p, same fps, no metadata).
Reports pooled AUC, motion-stratified AUC (within clip-motion quartiles, so "AI moves
less" cannot win it), the AUC of motion alone for comparison, and TPR/FPR at p=0.5.
The Runway-logo corner is always masked by the feature extractor.
Features and laundered copies are cached in $ANTIFAKE_CACHE (default /tmp/antifake_cache).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from antifake.detectors.temporal.corpus import DEFAULT_CACHE, DEFAULT_CORPUS
from antifake.detectors.temporal.train import TRAIN_VARIANTS, load_blocks, loso


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--per-source", action="store_true")
    args = ap.parse_args()
    blocks = load_blocks(args.corpus, args.cache, TRAIN_VARIANTS, with_gaps=True, log=False)
    result = loso(blocks)
    print(f"{'variant':8s} {'n_ai':>5s} {'n_real':>6s} {'AUC':>6s} {'strat':>6s} "
          f"{'motion':>6s} {'TPR@.5':>6s} {'FPR@.5':>6s}")
    for variant, r in result.items():
        print(f"{variant:8s} {r['n_ai']:5d} {r['n_real']:6d} {r['auc']:6.3f} "
              f"{r['motion_stratified_auc']:6.3f} {r['baseline_auc_low_motion_only']:6.3f} "
              f"{r['tpr_at_p0.5']:6.3f} {r['fpr_at_p0.5']:6.3f}")
        if args.per_source:
            print(json.dumps(r["per_source"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
