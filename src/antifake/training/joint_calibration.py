"""Refit :class:`antifake.calibration.CalibratedFusion` on several detectors' out-of-fold scores.

``antifake train`` writes ``oof_scores.tsv`` (leave-one-source-out ``forensic_image`` scores
per file and condition). This module adds other detectors' out-of-fold scores as extra
columns, joined on (file, condition), and refits the fusion; files a detector does not
judge (images for ``temporal``) keep an empty cell, i.e. a neutral contribution.

Currently joined: ``temporal`` (its own leave-one-source-out recipe from
:mod:`antifake.detectors.temporal.train`, variants ``orig`` / ``crf28`` matching our
``masked`` / ``laundered+masked``; both mask the logo corner). Usage::

    PYTHONPATH=src python -m antifake.training.joint_calibration \\
        var/forensic_train/oof_scores.tsv --corpus ../shared/corpus \\
        --out src/antifake/calibration.json
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from antifake.calibration import CalibratedFusion, refit_from_tsv

CONDITION_OF_TEMPORAL_VARIANT = {"orig": "masked", "crf28": "laundered+masked"}


def temporal_oof_scores(corpus: Path, cache: Path | None = None) -> dict[tuple[str, str], float]:
    """(absolute file path, condition) -> out-of-fold ``temporal`` score (probability)."""
    from antifake.detectors.temporal.corpus import DEFAULT_CACHE
    from antifake.detectors.temporal.train import (
        TRAIN_VARIANTS,
        clip_score,
        fit,
        load_blocks,
    )

    blocks = load_blocks(corpus, cache or DEFAULT_CACHE, TRAIN_VARIANTS, with_gaps=True,
                         log=False)
    out: dict[tuple[str, str], float] = {}
    for src in sorted({b.clip.source_repo for b in blocks}):
        model = fit([b for b in blocks if b.clip.source_repo != src])
        for b in blocks:
            cond = CONDITION_OF_TEMPORAL_VARIANT.get(b.variant)
            if b.clip.source_repo == src and b.gap == 1 and cond:
                z = clip_score(model, b.feats)
                out[(str(corpus / b.clip.file), cond)] = 1 / (1 + math.exp(-z))
    return out


def join_scores(oof_tsv: Path, extra: dict[str, dict[tuple[str, str], float]],
                out_tsv: Path) -> int:
    """Write ``oof_tsv`` plus one column per ``extra`` detector; returns rows written."""
    with oof_tsv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for name, scores in extra.items():
        for row in rows:
            s = scores.get((str(Path(row["file"])), row["condition"]))
            row[name] = "" if s is None else f"{s:.6f}"
    with out_tsv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("oof_tsv", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--temporal-cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True, help="calibration JSON to write")
    ap.add_argument("--ignore", action="append", default=[], metavar="DETECTOR",
                    help="keep this detector out of the verdict (repeatable), e.g. splicing")
    ap.add_argument("--ignore-reason", default=None, help="why, stored in the file's meta")
    args = ap.parse_args(argv)
    temporal = temporal_oof_scores(args.corpus.resolve(), args.temporal_cache)
    joined = args.oof_tsv.with_name("oof_scores_joint.tsv")
    n = join_scores(args.oof_tsv, {"temporal": temporal}, joined)
    fusion: CalibratedFusion = refit_from_tsv(joined, args.out)
    fusion.meta.update({"fitted_on": "leave-one-source-out scores joined on file+condition",
                        "rows": n, "temporal_scores": len(temporal)})
    if args.ignore:
        fusion.ignore = sorted(set(args.ignore))
        if args.ignore_reason:
            fusion.meta["ignore_reason"] = args.ignore_reason
    fusion.save(args.out)
    print(fusion.to_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
