"""``antifake train`` and ``antifake evaluate``: the learned forensic detector's tooling.

Needs the training extra (torch, onnx, the frozen backbone package); imported lazily by
:mod:`antifake.cli` so the scanner never pays for it.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import time
from pathlib import Path

import click

SECTION = "Forensic detection (corpus benchmark)"
DEFAULT_CACHE = Path("var")


def _log(msg: str) -> None:
    click.echo(msg, err=True)


@click.command("train")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for forensic_image.onnx/.json, calibration.json, oof_scores.tsv.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE,
              show_default=True, help="Feature and laundered-copy cache.")
@click.option("--family", default="effl0e", show_default=True,
              help="Feature family: effl0e, mnv2e, mnv2_low, mnv2_last, mnv2_all, mnv2:3,6,..., "
                   "residual")
@click.option("--max-frames", default=2, show_default=True, help="Frames per video.")
@click.option("--install", is_flag=True,
              help="Also copy the model and calibration into the installed package.")
def train_command(data: Path, out_dir: Path, cache_dir: Path, family: str, max_frames: int,
                  install: bool) -> None:
    """Train the forensic_image model on DATA (manifest.tsv or <label>/<files> folder)."""
    from antifake.training.data import load_manifest
    from antifake.training.pipeline import train_and_export

    items = load_manifest(data)
    _log(f"{len(items)} files from {len({it.source for it in items})} sources")
    t0 = time.perf_counter()
    result = train_and_export(items, out_dir, cache_dir, family, max_frames, log=_log)
    _log(f"done in {time.perf_counter() - t0:.0f} s")
    if install:
        import antifake
        from antifake.detectors import forensic_image

        pkg = Path(forensic_image.__file__).parent
        for name in ("forensic_image.onnx", "forensic_image.json"):
            shutil.copy2(out_dir / name, pkg / name)
        shutil.copy2(out_dir / "calibration.json", Path(antifake.__file__).parent)
        _log(f"installed into {pkg}")
    click.echo(json.dumps({"config": result["config"], "calibration": result["calibration"]},
                          indent=1, default=float))


@click.command("evaluate")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--split", type=click.Choice(["leave-one-source-out", "holdout"]),
              default="leave-one-source-out", show_default=True)
@click.option("--conditions", default="original,masked,laundered,laundered+masked,"
              "half+masked,crop+masked", show_default=True,
              help="Comma list; combine steps with + (original laundered half crop masked).")
@click.option("--family", "families", multiple=True, default=["effl0e"], show_default=True,
              help="Feature family (repeat to compare families).")
@click.option("--train-conditions", default=None,
              help="Comma list of training conditions (default: the shipped recipe).")
@click.option("--threshold", type=float, default=None,
              help="Operating threshold on the score (default: the shipped model's).")
@click.option("--max-frames", default=2, show_default=True)
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE,
              show_default=True)
@click.option("--markdown", type=click.Path(path_type=Path), default=None,
              help=f"Write the tables into this file's '{SECTION}' section.")
@click.option("--json-out", type=click.Path(path_type=Path), default=None)
def evaluate_command(data: Path, split: str, conditions: str, families: tuple[str, ...],
                     train_conditions: str | None, threshold: float | None, max_frames: int,
                     cache_dir: Path, markdown: Path | None, json_out: Path | None) -> None:
    """Evaluate feature families on DATA with source-grouped splits, per label."""
    from antifake.training.data import load_manifest
    from antifake.training.features import FeatureExtractor
    from antifake.training.media_io import parse_conditions
    from antifake.training.pipeline import (
        TRAIN_CONDITIONS,
        attribution_rows,
        fmt,
        loso_scores,
        metric_rows,
        rows_markdown,
    )

    thresholds: float | dict[str, float]
    if threshold is None:
        from antifake.detectors.forensic_image.detector import load_config

        cfg = load_config()
        thresholds = {k: float(v) for k, v in cfg.get("thresholds", {}).items()} or float(
            cfg.get("threshold", 0.5))
    else:
        thresholds = threshold
    conds = parse_conditions(conditions)
    tconds = parse_conditions(train_conditions) if train_conditions else list(TRAIN_CONDITIONS)
    items = load_manifest(data)
    fx = FeatureExtractor(cache_dir, max_frames=max_frames)
    out_md = [f"Split: {split} (by source repository); training conditions: "
              f"{', '.join(tconds)}; operating threshold {_fmt_thr(thresholds)}; "
              f"{max_frames} frames per video, clip score = mean frame logit.\n"]
    all_rows: dict[str, list[dict]] = {}
    summary = ["| family | condition | AUC all AI video | AUC Gen-2 | AUC Gen-1 "
               "| AUC AI image | TPR@5%FPR video | TPR@thr video | FPR@thr real video "
               "| FPR@thr real image |", "|---" * 10 + "|"]
    for n, fam in enumerate(families):
        t0 = time.perf_counter()
        oof = loso_scores(fx, fam, items, conds, tconds, split=split, log=_log)
        rows = [r for c in conds for r in metric_rows(oof, c, thresholds)]
        all_rows[fam] = rows
        click.echo(f"\n### family {fam} ({time.perf_counter() - t0:.0f} s)\n\n"
                   f"{rows_markdown(rows)}")
        for c in conds:
            g = {r["group"]: r for r in rows if r["condition"] == c}

            def val(key: str, field: str, g: dict = g) -> str:
                return fmt(g[key][field]) if key in g else "n/a"

            vid, img = "all AI video vs real video", "all AI image vs real image"
            summary.append(
                f"| `{fam}` | {c} | {val(vid, 'auc')} | {val('runway_gen2 vs real video', 'auc')}"
                f" | {val('runway_gen1 vs real video', 'auc')} | {val(img, 'auc')}"
                f" | {val(vid, 'tpr@5%fpr')} | {val(vid, 'tpr')} | {val(vid, 'fpr')}"
                f" | {val(img, 'fpr')} |")
        if n == 0:
            detail_cond = "laundered+masked" if "laundered+masked" in conds else conds[-1]
            detail = [r for r in rows if r["condition"] == detail_cond]
            out_md.append(f"\nPer label, `{fam}`, condition `{detail_cond}`:\n\n"
                          f"{rows_markdown(detail)}")
            attr = attribution_rows(oof, detail_cond, 0.5)
            lines = ["| condition | true family | n | top-1 | reported right "
                     "| reported right or parent family | reported (unknown below 0.5) |",
                     "|---|---|---|---|---|---|---|"]
            lines += [f"| {a['condition']} | {a['family']} | {a['n']} | {a['top1']:.3f} | "
                      f"{a['reported_right']:.3f} | {a['reported_right_or_parent']:.3f} | "
                      + ", ".join(f"{k}: {v}" for k, v in a["predicted"].items() if v)
                      + " |" for a in attr]
            block = "\n".join(lines) + "\n"
            click.echo(f"\nattribution ({fam}):\n{block}")
            out_md.append(f"\nGenerator attribution, `{fam}`, out of fold (AI files only):"
                          f"\n\n{block}")
    out_md.insert(1, "\nSummary (leave-one-source-out, out-of-fold scores):\n\n"
                  + "\n".join(summary) + "\n")
    if json_out:
        json_out.write_text(json.dumps(all_rows, indent=1, default=float))
    if markdown:
        cmd = ("antifake evaluate " + str(data) + f" --split {split} --conditions {conditions} "
               + " ".join(f"--family {f}" for f in families)
               + (f" --train-conditions {train_conditions}" if train_conditions else ""))
        body = (f"Command (repo root, venv active): `{cmd} --markdown {markdown}`\n\n"
                f"Machine: {platform.machine()} {platform.system()}, "
                f"Python {platform.python_version()}, 2 shared CPU cores, no GPU.\n\n"
                + "".join(out_md))
        write_section(markdown, f"{SECTION} - evaluation", body)
        _log(f"wrote section to {markdown}")


def _fmt_thr(t: float | dict[str, float]) -> str:
    if isinstance(t, dict):
        return ", ".join(f"{k} {v:.3f}" for k, v in sorted(t.items())) + " (per media type)"
    return f"{t:.3f}"


def write_section(path: Path, title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of a markdown file."""
    text = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    header = f"## {title}"
    pattern = re.compile(rf"^{re.escape(header)}\n.*?(?=^## |\Z)", re.M | re.S)
    new = f"{header}\n\n{body.rstrip()}\n\n"
    text = pattern.sub(lambda _m: new, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + new)
    path.write_text(text, "utf-8")


__all__ = ["evaluate_command", "train_command", "write_section"]
