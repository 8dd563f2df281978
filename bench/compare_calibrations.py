"""Two or more ``calibration.json`` files on the same out-of-fold detector scores.

Reads a training run's ``oof_scores.tsv`` (``antifake train --out DIR``), fuses every row
of ``--condition`` with each calibration, groups each file as the engine would see it under
that condition (:func:`antifake.training.formats.scored_format_groups`) and prints the
share flagged ``ai_generated`` per media type and side, with GIFs apart. The lines of the
run's own calibration were fitted on these scores, so its rates are in sample: the bench
compares line sets, it does not estimate what a user sees. Usage (repo root, venv
active)::

    PYTHONPATH=src python bench/compare_calibrations.py var/model_v05/oof_scores.tsv \\
        src/antifake/calibration.json var/model_v05/calibration.json
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from antifake.calibration import CalibratedFusion
from antifake.training.formats import scored_format_groups


def flagged_shares(rows: list[dict[str, str]], fusion: CalibratedFusion,
                   condition: str) -> dict[str, tuple[int, int]]:
    """``{"video real gif": (flagged, files), ...}`` for one calibration."""
    counts: dict[str, tuple[int, int]] = {}
    for r in rows:
        media, path = r["group"], Path(r["file"])
        groups = scored_format_groups(path, media, condition)
        scores = {d: float(r[d]) for d in fusion.coef if r.get(d) not in (None, "")}
        ai_line, _ = fusion.thresholds(media, groups)
        flag = fusion.probability(scores) >= ai_line
        key = (f"{media} {'AI' if r['is_ai'] == '1' else 'real'}"
               f"{' GIF' if path.suffix.lower() == '.gif' else ''}")
        n_flag, n = counts.get(key, (0, 0))
        counts[key] = (n_flag + flag, n + 1)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("oof_scores", type=Path)
    ap.add_argument("calibrations", type=Path, nargs="+")
    ap.add_argument("--condition", default="laundered+masked")
    args = ap.parse_args()
    with args.oof_scores.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t")
                if r["condition"] == args.condition]
    if not rows:
        ap.error(f"no row of condition {args.condition!r} in {args.oof_scores}")
    table = {str(c): flagged_shares(rows, CalibratedFusion.load(c), args.condition)
             for c in args.calibrations}
    keys = sorted({k for t in table.values() for k in t})
    print(f"condition {args.condition}: files flagged ai_generated")
    print("| files | " + " | ".join(table) + " |")
    print("|---|" + "---|" * len(table))
    for k in keys:
        cells = [f"{t[k][0]} / {t[k][1]} ({t[k][0] / t[k][1]:.1%})" if k in t else "-"
                 for t in table.values()]
        print(f"| {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
