"""Pool the per-file engine verdicts of several judged runs into one table with intervals.

Reads the ``--json-out`` files of ``bench/eval_clip_arithmetic.py`` (every file's
``ai_probability``, verdict, source and label) and prints, per media type, AUC of
``ai_probability`` and the share of AI / real files the engine called ``ai_generated``,
with 95 % bootstrap intervals over source repositories
(:func:`antifake.training.operating.source_intervals`; the engine's own verdict is the
line, so nothing is refitted). ``--line pooled`` instead holds every file to its media
type's pooled line of ``--calibration`` alone (no format-group lines), to see what the
group lines cost. Then a table per format group follows, and, where the runs recorded the
engine's generator guess, an attribution table: per true family
(:func:`antifake.training.data.family_of_label`), how often the engine named that family
(or its parent, e.g. ``runway`` for ``runway_gen2``), named another one, or named none
(``unknown``, ``other_ai`` or no guess). Usage (repo root, venv active)::

    PYTHONPATH=src python bench/summarise_judged.py var/added-judged.json var/th-judged.json \
        [--line pooled]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from antifake.training.operating import source_intervals


def load_judged(paths: list[Path], arithmetic: str = "exact"
                ) -> tuple[list[dict], list[SimpleNamespace]]:
    """The rows of judged runs' ``--json-out`` files for one arithmetic, and per row the
    item fields :func:`source_intervals` reads (label side, media type, source)."""
    rows = [r for path in paths for r in json.loads(path.read_text())
            if r.get("arithmetic", arithmetic) == arithmetic]
    items = [SimpleNamespace(is_ai=bool(r["is_ai"]), media_type=r["media_type"],
                             source=r["source"]) for r in rows]
    return rows, items


def flagged_intervals(scores: np.ndarray, flagged: np.ndarray,
                      items: list[SimpleNamespace]) -> dict:
    """:func:`source_intervals` where each file's line is given as flagged or not: a flagged
    file sits above a line of -1, any other below a line of 2 (scores lie in [0, 1])."""
    lines = np.where(np.asarray(flagged, dtype=bool), -1.0, 2.0)
    return source_intervals(scores, lines, items)  # type: ignore[arg-type]


def interval_cell(v: dict[str, float], pct: bool) -> str:
    """``value [low, high]``, as a percentage or to three decimals."""
    k, fmt = (100.0, "{:.1f} %") if pct else (1.0, "{:.3f}")
    return (f"{fmt.format(k * v['value'])} [{fmt.format(k * v['low'])}, "
            f"{fmt.format(k * v['high'])}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="--json-out files of judged runs")
    ap.add_argument("--arithmetic", default="exact", help="which arithmetic's rows to read")
    ap.add_argument("--line", choices=("engine", "pooled"), default="engine",
                    help="engine: the verdict; pooled: the media type's pooled line only")
    ap.add_argument("--calibration", type=Path,
                    default=Path(__file__).resolve().parents[1] / "src/antifake/calibration.json")
    args = ap.parse_args()
    rows, items = load_judged(args.runs, args.arithmetic)
    scores = np.asarray([r["ai_probability"] for r in rows], dtype=float)
    if args.line == "pooled":
        pooled = json.loads(args.calibration.read_text())["ai_thresholds"]
        flagged = np.asarray([r["ai_probability"] > pooled[r["media_type"]] for r in rows])
    else:
        flagged = np.asarray([r["verdict"] == "ai_generated" for r in rows])
    out = flagged_intervals(scores, flagged, items)
    print(f"{len(rows)} files from {len(args.runs)} judged runs")
    print("| media | AI files (sources) | real files (sources) | AUC | AI called ai_generated "
          "| real called ai_generated |")
    print("|---|---|---|---|---|---|")
    for mt, res in out.items():
        ai = {it.source for it in items if it.media_type == mt and it.is_ai}
        real = {it.source for it in items if it.media_type == mt and not it.is_ai}
        n_ai = sum(it.media_type == mt and it.is_ai for it in items)
        n_real = sum(it.media_type == mt and not it.is_ai for it in items)

        auc, tpr, fpr = (interval_cell(res[name], pct) for name, pct in
                         (("auc", False), ("tpr", True), ("fpr", True)))
        print(f"| {mt} | {n_ai} ({len(ai)}) | {n_real} ({len(real)}) | {auc} | {tpr} "
              f"| {fpr} |")
    print(f"\nper format group ({args.line} line)")
    print("| media | format group | real files (sources) | flagged | AI files (sources) "
          "| flagged |")
    print("|---|---|---|---|---|---|")
    for mt in sorted({r["media_type"] for r in rows}):
        for group in sorted({g for r in rows if r["media_type"] == mt
                             for g in r.get("format_groups", [])}):
            sel = [i for i, r in enumerate(rows)
                   if r["media_type"] == mt and group in r.get("format_groups", [])]
            side = {flag: [i for i in sel if items[i].is_ai == flag] for flag in (True, False)}
            n_src = {flag: len({items[i].source for i in side[flag]}) for flag in side}
            print(f"| {mt} | {group} | {len(side[False])} ({n_src[False]}) "
                  f"| {int(flagged[side[False]].sum())} | {len(side[True])} ({n_src[True]}) "
                  f"| {int(flagged[side[True]].sum())} |")
    table = attribution_table(rows)
    if table:
        print("\nattribution (the engine's generator guess)")
        print("\n".join(table))


def attribution_table(rows: list[dict]) -> list[str]:
    """Markdown rows: per true family of the AI files, named right / wrong / not named."""
    from antifake.training.data import family_of_label

    tally: dict[str, dict[str, int]] = {}
    sources: dict[str, set[str]] = {}
    for r in rows:
        if not r["is_ai"] or "generator" not in r:
            continue
        true = family_of_label(r["label"])
        named = (r.get("generator") or {}).get("family") or "unknown"
        t = tally.setdefault(true, {"n": 0, "right": 0, "wrong": 0, "none": 0})
        sources.setdefault(true, set()).add(r["source"])
        t["n"] += 1
        if named in ("unknown", "other_ai"):
            t["none" if true != "other_ai" or named == "unknown" else "right"] += 1
        elif named == true or true.startswith(named + "_"):
            t["right"] += 1
        else:
            t["wrong"] += 1
    out = ["| true family | AI files (sources) | named right | named another family "
           "| not named |", "|---|---|---|---|---|"]
    for fam, t in sorted(tally.items(), key=lambda kv: -kv[1]["n"]):
        out.append(f"| {fam} | {t['n']} ({len(sources[fam])}) | {t['right']} | {t['wrong']} "
                   f"| {t['none']} |")
    return out if tally else []


if __name__ == "__main__":
    main()
