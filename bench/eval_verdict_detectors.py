"""Which detectors should vote? Fusions refitted on out-of-fold scores, judged on
never-seen sources.

For each detector set (``forensic_image`` + ``semantic_clip`` as shipped, and
``semantic_clip`` alone), the calibrated fusion and its operating lines are fitted the
way ``antifake train`` fits them (:func:`antifake.training.pipeline.fuse_oof` on the
out-of-fold scores of the ``--base`` manifests under the calibration conditions, lines per
media type and format group), here from ``--split`` folds of the feature cache. Each fusion
is then applied to the per-detector scores that judged runs of the engine recorded
(``bench/eval_clip_arithmetic.py --json-out``, files from sources in no training manifest)
and to the base files' own out-of-fold scores (in sample for the lines: a reference, not a
result). Printed per media type: AUC, share of AI files and of real files at or above
their line, with 95 % bootstrap intervals over sources for the never-seen files. Usage
(repo root, venv active; needs the feature cache filled by ``antifake evaluate``)::

    PYTHONPATH=src python bench/eval_verdict_detectors.py --media-root ../shared/corpus \\
        --media-root var/corpus --base ../shared/corpus/manifest.tsv \\
        --base ../shared/corpus/extra-video-manifest.tsv \\
        --base ../shared/corpus/extra-image-manifest.tsv \\
        var/added-judged.json var/th-judged.json var/rg-judged.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from summarise_judged import flagged_intervals, interval_cell, load_judged

from antifake.training.data import load_manifests
from antifake.training.features import FeatureExtractor
from antifake.training.pipeline import (
    CALIBRATION_CONDITIONS,
    SEMANTIC_FAMILY,
    TRAIN_CONDITIONS,
    fuse_oof,
    loso_scores,
)

SETS = {"forensic_image + semantic_clip (shipped)": ("forensic_image", "semantic_clip"),
        "semantic_clip alone": ("semantic_clip",)}
FAMILY = {"forensic_image": "effl0e", "semantic_clip": SEMANTIC_FAMILY}


def judge(fusion: object, rows: list[dict], detectors: tuple[str, ...]
          ) -> tuple[np.ndarray, np.ndarray]:
    """(probability, flagged) of every judged row under ``fusion`` and its lines."""
    probs, flagged = [], []
    for r in rows:
        p = fusion.probability({d: r["scores"].get(d) for d in detectors})  # type: ignore[attr-defined]
        line, _ = fusion.thresholds(r["media_type"], r.get("format_groups", []))  # type: ignore[attr-defined]
        probs.append(p)
        flagged.append(p >= line)
    return np.asarray(probs, dtype=float), np.asarray(flagged, dtype=bool)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("judged", nargs="+", type=Path, help="--json-out files of judged runs")
    ap.add_argument("--base", action="append", required=True)
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--max-frames", type=int, default=4)
    ap.add_argument("--split", default="source-10fold")
    args = ap.parse_args()
    items = load_manifests(args.base, args.media_root).items
    fx = FeatureExtractor(args.cache_dir, args.max_frames)
    oofs = {d: loso_scores(fx, fam, items, CALIBRATION_CONDITIONS, TRAIN_CONDITIONS,
                           split=args.split, attribution=False) for d, fam in FAMILY.items()}
    rows, judged_items = load_judged(args.judged)
    print(f"fusions fitted on {len(items)} files ({args.split}); judged: {len(rows)} files")
    print("| detectors voting | media | never-seen: AUC | AI flagged | real flagged "
          "| out of fold (in-sample lines): AI flagged | real flagged |")
    print("|---|---|---|---|---|---|---|")
    for name, dets in SETS.items():
        fusion, fused = fuse_oof({d: oofs[d] for d in dets}, CALIBRATION_CONDITIONS)
        fusion.ignore = sorted(set(FAMILY) - set(dets))
        iv = flagged_intervals(*judge(fusion, rows, dets), judged_items)
        z = fused.logits[CALIBRATION_CONDITIONS[-1]]
        for mt, m in iv.items():
            base = [i for i, it in enumerate(items) if it.media_type == mt and np.isfinite(z[i])]
            p = 1.0 / (1.0 + np.exp(-z[base]))
            ai = np.asarray([items[i].is_ai for i in base])
            hit = p >= fusion.thresholds(mt, ())[0]
            print(f"| {name} | {mt} | {interval_cell(m['auc'], False)} "
                  f"| {interval_cell(m['tpr'], True)} | {interval_cell(m['fpr'], True)} "
                  f"| {100 * hit[ai].mean():.1f} % | {100 * hit[~ai].mean():.1f} % |",
                  flush=True)
        print(f"  ({name}: pooled lines {fusion.ai_thresholds}, coef {fusion.coef})")


if __name__ == "__main__":
    main()
