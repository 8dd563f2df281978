"""``antifake`` command line: a thin shell around :class:`antifake.engine.Engine`.

Sub-commands that need heavy optional stacks (server, training) are imported lazily so that
``antifake scan`` starts quickly.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from antifake import __version__
from antifake.config import AnalysisOptions, FrameSampling, Limits
from antifake.errors import AntifakeError
from antifake.results import AnalysisResult

# name -> "module:attribute" of a click command, loaded on first use.
LAZY_COMMANDS: dict[str, str] = {
    "train": "antifake.cli_train:train_command",
    "evaluate": "antifake.cli_train:evaluate_command",
    "serve": "antifake.service.cli:serve_command",
    "worker": "antifake.service.cli:worker_command",
    "keys": "antifake.service.cli:keys_group",
    "models": "antifake.cli_models:models_group",
}

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2


class LazyGroup(click.Group):
    """A click group whose listed sub-commands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._available_lazy()])

    @staticmethod
    def _available_lazy() -> list[str]:
        out = []
        for name, target in LAZY_COMMANDS.items():
            module = target.split(":")[0]
            if importlib.util.find_spec(module) is not None:
                out.append(name)
        return out

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                raise click.UsageError(
                    f"'{cmd_name}' needs an optional component that is not installed ({exc.name})"
                ) from exc
            cmd = getattr(module, attr)
            if not isinstance(cmd, click.Command):
                raise TypeError(f"{LAZY_COMMANDS[cmd_name]} is not a click command")
            return cmd
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="antifake")
def main() -> None:
    """Detect AI-generated and AI-edited images, video and speech."""
    from antifake.allocator import tune_allocator

    tune_allocator()


# Extensions of the formats antifake reads; see _is_media_candidate.
MEDIA_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".gif", ".bmp", ".dib",
    ".tif", ".tiff", ".heic", ".heif", ".hif", ".avif",
    ".mp4", ".m4v", ".mov", ".qt", ".webm", ".mkv", ".avi",
    ".wav", ".aif", ".aiff", ".aifc", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aac",
    ".m4a", ".m4b",
})


def _is_media_candidate(path: Path) -> bool:
    """Whether a file found while walking a folder should be analysed.

    Files with a media extension are always analysed (a broken ``.jpg`` must be reported),
    and so is anything whose bytes sniff as media whatever its name; other files (READMEs,
    certificates, sidecars) are skipped rather than reported as errors.
    """
    if path.suffix.lower() in MEDIA_SUFFIXES:
        return True
    from antifake.media.sniff import sniff_file

    try:
        sniff_file(path)
    except (AntifakeError, OSError):
        return False
    return True


def iter_media_paths(
    paths: tuple[str, ...], recursive: bool = True, skipped: list[Path] | None = None
) -> Iterator[Path]:
    """Files named directly, and the media files inside named folders (sorted).

    Hidden files and folders are not walked; non-media files found in folders are appended
    to ``skipped``. Files named directly are always yielded, missing ones included (the
    engine reports them as ``not_found``).
    """
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            yield p
            continue
        walker = p.rglob("*") if recursive else p.glob("*")
        for child in sorted(walker):
            rel = child.relative_to(p)
            if not child.is_file() or any(part.startswith(".") for part in rel.parts):
                continue
            if _is_media_candidate(child):
                yield child
            elif skipped is not None:
                skipped.append(child)


def _verdict_style(verdict: str | None) -> str:
    return {"ai_generated": "bold red", "authentic": "bold green", "uncertain": "yellow"}.get(
        verdict or "", "bold magenta"
    )


def _print_table(results: list[AnalysisResult], console: Any) -> None:
    from rich.table import Table

    from antifake.explain import main_evidence

    table = Table(title=f"antifake {__version__}", show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("type")
    table.add_column("verdict")
    table.add_column("P(AI)", justify="right")
    table.add_column("generator")
    table.add_column("main evidence", overflow="fold")
    for r in results:
        if r.error:
            table.add_row(r.file, r.media_type or "-", f"[bold magenta]error: {r.error['code']}",
                          "-", "-", r.error["message"])
            continue
        gen = f"{r.generator.family} ({r.generator.probability:.0%})" if r.generator else "-"
        table.add_row(
            r.file,
            r.media_type or "-",
            f"[{_verdict_style(r.verdict)}]{r.verdict}",
            f"{r.ai_probability:.2f}" if r.ai_probability is not None else "-",
            gen,
            main_evidence(r),
        )
    console.print(table)


@main.command("scan")
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per file (JSON Lines).")
@click.option("--detectors", "detectors", default=None,
              help="Comma-separated detector names (default: all default detectors; "
                   "see `antifake detectors`).")
@click.option("--sampling", default="fps=2,max=64", show_default=True,
              help="Video frame sampling: all | keyframes | fps=N, optionally ,max=K.")
@click.option("--heatmap", "heatmap_dir", type=click.Path(file_okay=False), default=None,
              help="Write heatmap overlays (and video/audio timelines) as PNG into this folder.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write an HTML report per file and an index.html for the batch here.")
@click.option("--report-pdf", is_flag=True,
              help="With --report, also write each report as PDF (a few seconds a file).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Write one CSV line per file (verdict, P(AI), generator, evidence, sha256).")
@click.option("--no-recursive", is_flag=True, help="Do not descend into sub-folders.")
@click.option("--max-file-mb", type=float, default=None, help="Reject files larger than this.")
@click.option("--max-pixels", type=int, default=None, help="Reject images with more pixels.")
@click.option("--max-duration", type=float, default=None,
              help="Reject longer videos and audio (seconds).")
@click.option("--timeout", type=float, default=None, help="Per-file time budget in seconds.")
@click.option("--trust-anchors", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM bundle of C2PA trust anchors (default: $ANTIFAKE_C2PA_TRUST_ANCHORS).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def scan_command(
    paths: tuple[str, ...],
    as_json: bool,
    detectors: str | None,
    sampling: str,
    heatmap_dir: str | None,
    report_dir: str | None,
    report_pdf: bool,
    csv_path: str | None,
    no_recursive: bool,
    max_file_mb: float | None,
    max_pixels: int | None,
    max_duration: float | None,
    timeout: float | None,
    trust_anchors: str | None,
    quiet: bool,
) -> None:
    """Scan image, video and audio FILES or FOLDERS (recursively) for AI generation.

    Exit status: 0 when every file was analysed, 1 when any file could not be, 2 on bad
    options.
    """
    from rich.console import Console

    from antifake.engine import Engine

    try:
        limits = _limits_from_options(max_file_mb, max_pixels, max_duration, timeout)
        options = AnalysisOptions(
            detectors=tuple(d.strip() for d in detectors.split(",") if d.strip())
            if detectors else None,
            sampling=FrameSampling.parse(sampling),
            limits=limits,
            want_heatmaps=True,
        )
        config = {"c2pa": {"trust_anchors": trust_anchors}} if trust_anchors else None
        engine = Engine(options=options, detector_config=config)
    except AntifakeError as exc:
        raise click.UsageError(exc.message) from exc

    skipped: list[Path] = []
    files = list(iter_media_paths(paths, recursive=not no_recursive, skipped=skipped))
    err_console = Console(stderr=True)
    if skipped:
        err_console.print(f"skipped {len(skipped)} non-media file(s) found in folders")
    out_console = Console()
    results: list[AnalysisResult] = []
    if report_pdf and not report_dir:
        raise click.UsageError("--report-pdf needs --report DIR")
    from antifake.report.artifacts import UniqueStems

    stems = UniqueStems()
    report_rows: list[tuple[AnalysisResult, str | None]] = []
    # Progress goes to stderr so that --json output stays clean JSON Lines on stdout.
    show_progress = not quiet and (
        err_console.is_terminal or bool(os.environ.get("ANTIFAKE_PROGRESS"))
    )

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not show_progress,
        transient=True,
    ) as progress:
        overall = progress.add_task("scanning", total=len(files))
        for path in files:
            def on_step(file: str, step: int, total: int, label: str) -> None:
                progress.update(overall, description=f"{Path(file).name}: {label} ({step}/{total})")

            result = engine.analyze(path, progress=on_step)
            results.append(result)
            stem = stems.stem_for(path)
            if heatmap_dir and result.ok:
                _write_artifacts(result, path, Path(heatmap_dir), err_console, stem)
            report_name = None
            if report_dir:
                report_name = _write_report(result, path, Path(report_dir), stem, report_pdf,
                                            err_console)
            report_rows.append((result, report_name))
            if as_json:
                sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
                sys.stdout.flush()
            progress.advance(overall)

    if report_dir:
        from antifake.report.artifacts import write_batch_index

        index = write_batch_index(report_rows, Path(report_dir))
        click.echo(f"wrote {index}", err=True)
    if csv_path:
        from antifake.report.artifacts import write_csv

        click.echo(f"wrote {write_csv(report_rows, csv_path)}", err=True)
    if not as_json:
        _print_table(results, out_console)
    failed = sum(1 for r in results if not r.ok)
    if failed:
        err_console.print(f"[bold magenta]{failed} of {len(results)} file(s) could not be analysed")
    sys.exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _limits_from_options(
    max_file_mb: float | None, max_pixels: int | None, max_duration: float | None,
    timeout: float | None,
) -> Limits:
    base = Limits()
    changes: dict[str, Any] = {}
    if max_file_mb is not None:
        changes["max_file_bytes"] = int(max_file_mb * 1024 * 1024)
    if max_pixels is not None:
        changes["max_image_pixels"] = max_pixels
    if max_duration is not None:
        changes["max_duration_s"] = max_duration
    if timeout is not None:
        changes["timeout_s"] = timeout
    from dataclasses import replace

    return replace(base, **changes)


def _write_artifacts(result: AnalysisResult, path: Path, out_dir: Path, console: Any,
                     stem: str) -> None:
    from antifake.report import write_scan_artifacts

    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        written = write_scan_artifacts(result, path, out_dir, stem=stem)
    except AntifakeError as exc:
        console.print(f"[yellow]no heatmap for {path}: {exc.message}")
        return
    for p in written:
        kind = "timeline" if p.name.endswith(".timeline.png") else "heatmaps"
        result.artifacts.setdefault(kind, []).append(str(p))
        click.echo(f"wrote {p}", err=True)  # plain: rich would wrap long paths


def _write_report(result: AnalysisResult, path: Path, out_dir: Path, stem: str, pdf: bool,
                  console: Any) -> str | None:
    """Write the file's report(s); returns the HTML file's name (for the index)."""
    from antifake.report import write_report_file

    try:
        written = write_report_file(result, path, out_dir, stem, pdf=pdf)
    except (AntifakeError, OSError, ImportError) as exc:
        console.print(f"[yellow]no report for {path}: {exc}")
        return None
    for p in written:
        result.artifacts.setdefault("report", []).append(str(p))
        click.echo(f"wrote {p}", err=True)
    return written[0].name


@main.command("detectors")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
def detectors_command(as_json: bool) -> None:
    """List the registered detectors."""
    from antifake.detectors.registry import available_detectors

    entries = available_detectors()
    rows: list[dict[str, Any]] = []
    for name, entry in entries.items():
        cls = entry.factory
        rows.append({
            "name": name,
            "kind": getattr(cls, "kind", "?"),
            "media_types": sorted(getattr(cls, "media_types", [])),
            "version": getattr(cls, "version", "?"),
            "default": entry.default,
            "description": entry.description,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        flag = "*" if row["default"] else " "
        click.echo(f"{flag} {row['name']:<16} {row['kind']:<11} {','.join(row['media_types']):<12} "
                   f"v{row['version']}  {row['description']}")
    click.echo("(* = run by default)")


if __name__ == "__main__":  # pragma: no cover
    main()
