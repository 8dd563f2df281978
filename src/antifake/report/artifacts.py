"""Files written by ``antifake scan --heatmap DIR``, ``--report DIR`` and ``--csv FILE``."""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Sequence
from pathlib import Path

from antifake.report.images import render_heatmap_png, render_timeline_png
from antifake.results import AnalysisResult

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("._") or "detector"


class UniqueStems:
    """File-name stems for a batch's outputs, unique per input: ``real.mp4`` and
    ``real.png`` used to overwrite each other's ``real.heatmap.png``. The first input with
    a stem keeps it; later ones add their extension (``real.png``), then a counter."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def stem_for(self, media_path: str | Path) -> str:
        p = Path(media_path)
        candidates = [_safe(p.stem), _safe(p.name)]
        for c in candidates:
            if c not in self._taken:
                self._taken.add(c)
                return c
        n = 2
        while f"{candidates[1]}-{n}" in self._taken:
            n += 1
        self._taken.add(f"{candidates[1]}-{n}")
        return f"{candidates[1]}-{n}"


def write_scan_artifacts(
    result: AnalysisResult, media_path: str | Path, out_dir: str | Path,
    stem: str | None = None,
) -> list[Path]:
    """Write the heatmap overlay(s) and, for video, the timeline of ``result`` as PNGs.

    - ``<stem>.heatmap.png``: the heatmap of the highest-scoring detector over the image
      (or its most suspicious video frame);
    - ``<stem>.heatmap.<detector>.png``: one per detector, when several produced heatmaps;
    - ``<stem>.timeline.png``: per-frame scores, for videos with a timeline.

    Returns the written paths (empty when there was nothing to draw). Media decoding
    errors raise :class:`antifake.errors.AntifakeError`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or _safe(Path(media_path).stem)
    written: list[Path] = []

    def _write(name: str, data: bytes | None) -> None:
        if data is None:
            return
        path = out / name
        path.write_bytes(data)
        written.append(path)

    if not result.ok:
        return written
    _write(f"{stem}.heatmap.png", render_heatmap_png(result, media_path))
    names = list(result.heatmaps())
    if len(names) > 1:
        for name in names:
            _write(f"{stem}.heatmap.{_safe(name)}.png",
                   render_heatmap_png(result, media_path, detector=name))
    _write(f"{stem}.timeline.png", render_timeline_png(result))
    return written


def write_report_file(result: AnalysisResult, media_path: str | Path, out_dir: str | Path,
                      stem: str, pdf: bool = False) -> list[Path]:
    """``<stem>.report.html`` (and ``.report.pdf`` with ``pdf``) of one result."""
    from antifake.report.html import render_report_html, render_report_pdf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = out / f"{stem}.report.html"
    page.write_text(render_report_html(result, media_path), "utf-8")
    written = [page]
    if pdf:
        doc = out / f"{stem}.report.pdf"
        doc.write_bytes(render_report_pdf(result, media_path))
        written.append(doc)
    return written


_VERDICT_WORDS = {"ai_generated": "AI-generated", "authentic": "Authentic",
                  "uncertain": "Uncertain"}


def write_batch_index(rows: Sequence[tuple[AnalysisResult, str | None]],
                      out_dir: str | Path, title: str = "antifake scan") -> Path:
    """``index.html``: one line per file (verdict, P(AI), generator, main evidence, link to
    its report), counts per verdict on top. ``rows`` = (result, report file name or None)."""
    from antifake import __version__
    from antifake.explain import main_evidence

    out = Path(out_dir)
    counts: dict[str, int] = {}
    lines = []
    for result, report in rows:
        key = result.verdict or "error"
        counts[key] = counts.get(key, 0) + 1
        verdict = (_VERDICT_WORDS.get(result.verdict or "", "")
                   or f"error: {(result.error or {}).get('code', '?')}")
        gen = result.generator
        name = html.escape(result.file)
        link = f'<a href="{html.escape(report)}">{name}</a>' if report else name
        p = "" if result.ai_probability is None else f"{result.ai_probability * 100:.1f} %"
        lines.append(
            f'<tr><td class="f">{link}</td><td>{html.escape(result.media_type or "-")}</td>'
            f'<td class="v {html.escape(key)}">{html.escape(verdict)}</td><td>{p}</td>'
            f"<td>{html.escape((gen.name or gen.family) if gen else '-')}</td>"
            f"<td>{html.escape(main_evidence(result))}</td></tr>")
    summary = ", ".join(f"{n} {html.escape(_VERDICT_WORDS.get(k, k))}"
                        for k, n in sorted(counts.items()))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d232b}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #e3e7ec;
padding:.3rem .5rem;text-align:left;vertical-align:top}}.f{{overflow-wrap:anywhere}}
.v.ai_generated{{color:#b3261e;font-weight:700}}.v.authentic{{color:#1e7a3c;font-weight:700}}
.v.uncertain{{color:#9a6700;font-weight:700}}.v.error{{color:#6b2c91}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{len(rows)} file(s): {summary}. antifake {html.escape(__version__)}. Scores are
probabilistic evidence, not proof; each report holds the file's SHA-256.</p>
<table><thead><tr><th>file</th><th>type</th><th>verdict</th><th>P(AI)</th><th>generator</th>
<th>main evidence</th></tr></thead><tbody>
{chr(10).join(lines)}
</tbody></table></body></html>
"""
    path = out / "index.html"
    path.write_text(page, "utf-8")
    return path


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (file names and metadata are
    attacker-controlled: ``=HYPERLINK(...)`` in a file name must stay text)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


CSV_COLUMNS = ("file", "media_type", "verdict", "ai_probability", "generator_family",
               "generator_name", "main_evidence", "error_code", "error_message", "sha256",
               "elapsed_ms", "report")


def write_csv(rows: Sequence[tuple[AnalysisResult, str | None]], path: str | Path) -> Path:
    """One CSV line per file (``CSV_COLUMNS``), for spreadsheets and case files."""
    from antifake.explain import main_evidence

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for result, report in rows:
            gen = result.generator
            err = result.error or {}
            w.writerow([_cell(str(v)) for v in (
                result.file, result.media_type or "", result.verdict or "",
                "" if result.ai_probability is None else f"{result.ai_probability:.4f}",
                gen.family if gen else "", (gen.name or "") if gen else "",
                main_evidence(result) if result.ok else "", err.get("code", ""),
                err.get("message", ""), (result.media or {}).get("sha256", ""),
                f"{result.elapsed_ms:.1f}", report or "",
            )])
    return out
