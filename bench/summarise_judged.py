"""Pool the per-file engine verdicts of several judged runs into one table with intervals.

Reads the ``--json-out`` files of ``bench/eval_clip_arithmetic.py`` (every file's
``ai_probability``, verdict, source and label) and prints, per media type, AUC of
``ai_probability`` and the share of AI / real files the engine called ``ai_generated``,
with 95 % bootstrap intervals over source repositories
(:func:`antifake.training.operating.source_intervals`; the engine's own verdict is the
line, so nothing is refitted). Usage (repo root, venv active)::

    PYTHONPATH=src python bench/summarise_judged.py var/added-judged.json var/th-judged.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from antifake.training.operating import source_intervals


def _cell(v: dict[str, float], pct: bool) -> str:
    """``value [low, high]``, as a percentage or to three decimals."""
    k, fmt = (100.0, "{:.1f} %") if pct else (1.0, "{:.3f}")
    return (f"{fmt.format(k * v['value'])} [{fmt.format(k * v['low'])}, "
            f"{fmt.format(k * v['high'])}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="--json-out files of judged runs")
    ap.add_argument("--arithmetic", default="exact", help="which arithmetic's rows to read")
    args = ap.parse_args()
    rows = [r for path in args.runs for r in json.loads(path.read_text())
            if r.get("arithmetic", args.arithmetic) == args.arithmetic]
    items = [SimpleNamespace(is_ai=bool(r["is_ai"]), media_type=r["media_type"],
                             source=r["source"]) for r in rows]
    scores = np.asarray([r["ai_probability"] for r in rows], dtype=float)
    # The verdict is the line: a file called ai_generated is "above" it (probabilities lie
    # in [0, 1]), any other file below it.
    lines = np.where([r["verdict"] == "ai_generated" for r in rows], -1.0, 2.0)
    out = source_intervals(scores, lines, items)  # type: ignore[arg-type]
    print(f"{len(rows)} files from {len(args.runs)} judged runs")
    print("| media | AI files (sources) | real files (sources) | AUC | AI called ai_generated "
          "| real called ai_generated |")
    print("|---|---|---|---|---|---|")
    for mt, res in out.items():
        ai = {it.source for it in items if it.media_type == mt and it.is_ai}
        real = {it.source for it in items if it.media_type == mt and not it.is_ai}
        n_ai = sum(it.media_type == mt and it.is_ai for it in items)
        n_real = sum(it.media_type == mt and not it.is_ai for it in items)

        auc, tpr, fpr = (_cell(res[name], pct) for name, pct in
                         (("auc", False), ("tpr", True), ("fpr", True)))
        print(f"| {mt} | {n_ai} ({len(ai)}) | {n_real} ({len(real)}) | {auc} | {tpr} "
              f"| {fpr} |")


if __name__ == "__main__":
    main()
