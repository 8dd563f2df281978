"""The forensic report: one self-contained HTML page (and the same page as PDF).

Everything in the report that comes from the analysed file (its name, metadata, detector
evidence quoting it) is attacker-controlled, so the template is rendered with Jinja2
autoescaping on, and the page carries a Content-Security-Policy that forbids scripts and
any network fetch. Images are embedded as ``data:`` URIs so the file stands alone as
evidence.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined

from antifake import __version__
from antifake.config import Limits
from antifake.errors import AntifakeError
from antifake.media.orientation import valid_code
from antifake.report.images import (
    heatmap_frame_time,
    render_heatmap_only_png,
    render_heatmap_png,
    render_spectrogram_png,
    render_timeline_png,
)
from antifake.results import AnalysisResult, DetectorResult

log = logging.getLogger(__name__)

# Long metadata values (a full XMP packet) are cut in the report so it stays readable;
# the full value is in the JSON result.
FIGURE_BOX_PX = (330, 200)  # heatmap figures are drawn to fit this box (CSS px)
_VERDICT_LABELS = {
    "ai_generated": "AI-generated",
    "authentic": "Authentic",
    "uncertain": "Uncertain",
}
_MEDIA_FIELDS = [
    ("media_type", "Media type"),
    ("format", "Format"),
    ("mime", "MIME type"),
    ("size_bytes", "Size (bytes)"),
    ("dimensions", "Dimensions"),
    ("duration_s", "Duration (s)"),
    ("fps", "Frame rate (fps)"),
    ("frame_count", "Frames"),
    ("codec", "Codec"),
    ("animated", "Animated"),
    ("orientation_note", "Orientation"),
]

# What each EXIF orientation code did to the stored pixels before analysis (1: nothing).
_ORIENTATION_NOTES = {
    2: "mirrored left-right for display (EXIF orientation 2)",
    3: "turned 180 degrees for display (EXIF orientation 3)",
    4: "mirrored top-bottom for display (EXIF orientation 4)",
    5: "mirrored along the diagonal for display (EXIF orientation 5)",
    6: "turned 90 degrees clockwise for display (EXIF orientation 6 / display matrix)",
    7: "mirrored along the other diagonal for display (EXIF orientation 7)",
    8: "turned 90 degrees counter-clockwise for display (EXIF orientation 8 / display matrix)",
}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("antifake.report", "templates"),
        autoescape=True,  # always: every string may come from a hostile file
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.globals["fmt_prob"] = _fmt_prob
    env.globals["stance_label"] = stance_label
    return env


def stance_label(det: Any, fusion: dict[str, Any] | None = None) -> str:
    """What a detector result meant for the verdict, for people (see antifake.explain)."""
    if det.score is None:
        return "no opinion"
    if det.stance == "ai":
        return "evidence for AI generation"
    if det.stance == "authentic":
        return "evidence of a real capture"
    if fusion is not None and det.detector in (fusion.get("contributions") or {}):
        return "too weak to count either way"
    return "does not vote (reported only)"


def _fmt_prob(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.1%} ({p:.4f})"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _photo_uri(png: bytes) -> str:
    """A picture (heatmap over a photo or frame) as a JPEG data URI: photos compress ~10x
    better as JPEG and the PDF embeds JPEG as is, which keeps reports small and fast."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def base_name(file: str) -> str:
    """The last path component of ``file``, whether written with / or \\."""
    name = PureWindowsPath(PurePosixPath(file).name).name
    return name or file


def _sha256_of(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def _figure_size(png: bytes, box: tuple[int, int] = FIGURE_BOX_PX) -> tuple[int, int]:
    """CSS size that fits ``png`` into ``box``, scaling small media up so it is legible."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        w, h = img.size
    scale = min(box[0] / w, box[1] / h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _media_rows(result: AnalysisResult) -> list[tuple[str, str]]:
    media = dict(result.media or {})
    media["media_type"] = result.media_type
    if media.get("width") and media.get("height"):
        media["dimensions"] = f"{media['width']} x {media['height']} px"
    # Analysed, heatmaps and frames drawn as displayed; say so when that turned the pixels.
    media["orientation_note"] = _ORIENTATION_NOTES.get(valid_code(media.get("orientation")))
    rows = []
    for key, label in _MEDIA_FIELDS:
        value = media.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, float):
            value = f"{value:.3f}".rstrip("0").rstrip(".")
        rows.append((label, str(value)))
    return rows


MAX_METADATA_ROWS = 16
MAX_METADATA_VALUE = 160
MAX_OTHER_HEATMAPS = 2
OTHER_HEATMAP_BOX_PX = (240, 140)


def _meaning(det: DetectorResult) -> str:
    """What ``det``'s heatmap shows, as its detector says (``details.heatmap_meaning``)."""
    return str(det.details.get("heatmap_meaning")
               or "warm colours mark regions this detector finds more likely AI-generated")


def _key_heatmap_detector(result: AnalysisResult) -> str | None:
    """The heatmap that explains the verdict: one from a detector that counted for it,
    else forensic_image's, else the highest-scoring one."""
    with_maps = [d for d in result.detectors if d.heatmap is not None]
    if not with_maps:
        return None
    want = "ai" if result.verdict == "ai_generated" else "authentic"
    pool = ([d for d in with_maps if d.stance == want]
            or [d for d in with_maps if d.detector == "forensic_image"] or with_maps)
    return max(pool, key=lambda d: d.score if d.score is not None else -1.0).detector


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list | tuple):
        _flatten(prefix, ", ".join(str(v) for v in value), out)
    else:
        text = str(value)
        if len(text) > MAX_METADATA_VALUE:
            text = text[:MAX_METADATA_VALUE] + f"... [{len(text) - MAX_METADATA_VALUE} more]"
        out.append((prefix, text))


def _legend_gradient() -> str:
    """CSS gradient with the heatmap colour map's colours (low -> high)."""
    from antifake.report.images import _colour

    stops = _colour(np.linspace(0, 1, 6, dtype=np.float32)[None, :])[0]
    return "linear-gradient(to right, " + ", ".join(
        f"rgb({r},{g},{b})" for r, g, b in stops.tolist()) + ")"


def _heatmap_figure(result: AnalysisResult, det: DetectorResult,
                    media_path: str | Path | None, overlay_wanted: bool,
                    box: tuple[int, int], notes: list[str],
                    limits: Limits | None = None) -> dict[str, Any] | None:
    png: bytes | None = None
    overlay = False
    if media_path is not None and overlay_wanted:
        try:
            png = render_heatmap_png(result, media_path, detector=det.detector, limits=limits)
            overlay = png is not None
        except (AntifakeError, OSError) as exc:
            notes.append(f"Could not draw {det.detector}'s heatmap over the media: {exc}")
    if png is None:
        png = render_heatmap_only_png(result, detector=det.detector)
    if png is None:
        return None
    width, height = _figure_size(png, box)
    # An overlay is a photo; a heatmap alone keeps its transparency as PNG.
    return {"detector": det.detector, "uri": _photo_uri(png) if overlay else _data_uri(png),
            "width": width,
            "height": height, "overlay": overlay, "meaning": _meaning(det),
            "frame_time": heatmap_frame_time(det) if result.media_type == "video" else None}


def _media_line(result: AnalysisResult) -> str:
    return "; ".join(f"{label} {value}" if label != "Format" else value
                     for label, value in _media_rows(result))


def _context(result: AnalysisResult, media_path: str | Path | None,
             limits: Limits | None = None) -> dict[str, Any]:
    media = result.media or {}
    sha256 = media.get("sha256")
    if not sha256 and media_path is not None:
        sha256 = _sha256_of(Path(media_path))
    notes: list[str] = []
    key_name = _key_heatmap_detector(result)
    key_heatmap = None
    others: list[dict[str, Any]] = []
    for det in result.detectors:
        if det.heatmap is None:
            continue
        if det.detector == key_name:
            key_heatmap = _heatmap_figure(result, det, media_path, True, FIGURE_BOX_PX, notes,
                                          limits)
        elif len(others) < MAX_OTHER_HEATMAPS:
            # Appendix thumbnails over the media too; one decode each (short clips: cheap).
            fig = _heatmap_figure(result, det, media_path, True, OTHER_HEATMAP_BOX_PX, notes,
                                  limits)
            if fig:
                others.append(fig)
    timeline = render_timeline_png(result)
    spectrogram = None
    if result.media_type == "audio" and media_path is not None:
        try:
            spectrogram = render_spectrogram_png(media_path, limits)
        except (AntifakeError, OSError) as exc:
            notes.append(f"Could not draw the spectrogram: {exc}")
    metadata_rows: list[tuple[str, str]] = []
    _flatten("", media.get("metadata") or {}, metadata_rows)
    fusion_rows: list[tuple[str, str]] = [
        (k, f"{result.fusion[k]:.3f}" if isinstance(result.fusion[k], float)
         else str(result.fusion[k]))
        for k in ("method", "basis", "ai_threshold", "authentic_threshold", "opinions")
        if k in result.fusion
    ]
    if result.fusion.get("format_groups"):
        # Which per-format operating lines the ai_threshold above came from.
        fusion_rows.append(("format_groups", ", ".join(map(str, result.fusion["format_groups"]))))
    versions = [(d.detector, str(d.details.get("version", "unknown"))) for d in result.detectors]
    return {
        "result": result,
        "file_name": base_name(result.file),
        "sha256": sha256,
        "verdict_class": result.verdict or "none",
        "verdict_label": _VERDICT_LABELS.get(result.verdict or "", "No verdict"),
        "fusion_rows": fusion_rows,
        "media_line": _media_line(result),
        "key_heatmap": key_heatmap,
        "other_heatmaps": others,
        "legend_gradient": _legend_gradient(),
        "timeline_uri": _data_uri(timeline) if timeline else None,
        "spectrogram_uri": _data_uri(spectrogram) if spectrogram else None,
        "visual_notes": notes,
        "metadata_rows": metadata_rows[:MAX_METADATA_ROWS],
        "metadata_more": max(0, len(metadata_rows) - MAX_METADATA_ROWS),
        "detector_versions": versions,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "report_version": __version__,
    }


def render_report_html(result: AnalysisResult, media_path: str | Path | None = None,
                       limits: Limits | None = None) -> str:
    """The self-contained HTML report of ``result``.

    With ``media_path`` (the analysed file, still on disk) the heatmaps are drawn over the
    image / video frame; without it, or when it cannot be decoded, the heatmaps are shown
    alone and the report says so. ``limits`` bound that decoding (the service's own).
    """
    return _environment().get_template("report.html").render(
        **_context(result, media_path, limits))


def render_report_document(result: AnalysisResult, media_path: str | Path | None = None,
                           limits: Limits | None = None) -> Any:
    """The laid-out PDF document (WeasyPrint ``Document``: ``.pages``, ``.write_pdf()``)."""
    # Imported here: WeasyPrint loads Pango through cffi, which takes a moment and is only
    # needed for PDF.
    import weasyprint
    from weasyprint.urls import URLFetcher

    html = render_report_html(result, media_path, limits)
    # data: URIs only: rendering a report never touches the network or the file system.
    fetcher = URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
    # presentational_hints: honour the <img width/height> attributes the template sets.
    return weasyprint.HTML(string=html, url_fetcher=fetcher).render(presentational_hints=True)


def render_report_pdf(result: AnalysisResult, media_path: str | Path | None = None,
                      limits: Limits | None = None) -> bytes:
    """The report of :func:`render_report_html` as PDF (WeasyPrint, needs Pango)."""
    pdf = render_report_document(result, media_path, limits).write_pdf()
    if pdf is None:  # only when a target is given; keeps the return type honest
        raise RuntimeError("WeasyPrint returned no PDF")
    return bytes(pdf)
