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
import json
import logging
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from antifake import __version__
from antifake.errors import AntifakeError
from antifake.report.images import (
    heatmap_frame_time,
    render_heatmap_only_png,
    render_heatmap_png,
    render_spectrogram_png,
    render_timeline_png,
)
from antifake.results import AnalysisResult

log = logging.getLogger(__name__)

# Long metadata values (a full XMP packet) are cut in the report so it stays readable;
# the full value is in the JSON result.
MAX_METADATA_CHARS = 20_000
FIGURE_BOX_PX = (560, 360)  # heatmap figures are drawn to fit this box (CSS px)
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
]


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
    env.globals["to_json"] = _to_json
    env.globals["stance_label"] = stance_label
    return env


def stance_label(det: Any) -> str:
    """What a detector result meant for the verdict, for people (see antifake.explain)."""
    if det.score is None:
        return "no opinion"
    if det.stance == "ai":
        return "evidence for AI generation"
    if det.stance == "authentic":
        return "evidence of a real capture"
    return "neutral: not used for the verdict, or too weak to count either way"


def _fmt_prob(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.1%} ({p:.4f})"


def _to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def base_name(file: str) -> str:
    """The last path component of ``file``, whether written with / or \\."""
    name = PureWindowsPath(PurePosixPath(file).name).name
    return name or file


def _truncate_strings(value: Any, limit: int = MAX_METADATA_CHARS) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"... [{len(value) - limit} more characters cut]"
    if isinstance(value, dict):
        return {str(k): _truncate_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_truncate_strings(v, limit) for v in value]
    return value


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
    rows = []
    for key, label in _MEDIA_FIELDS:
        value = media.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, float):
            value = f"{value:.3f}".rstrip("0").rstrip(".")
        rows.append((label, str(value)))
    return rows


def _context(result: AnalysisResult, media_path: str | Path | None) -> dict[str, Any]:
    media = result.media or {}
    sha256 = media.get("sha256")
    if not sha256 and media_path is not None:
        sha256 = _sha256_of(Path(media_path))
    heatmaps: list[dict[str, Any]] = []
    notes: list[str] = []
    for det in result.detectors:
        if det.heatmap is None:
            continue
        png: bytes | None = None
        overlay = False
        if media_path is not None:
            try:
                png = render_heatmap_png(result, media_path, detector=det.detector)
                overlay = png is not None
            except (AntifakeError, OSError) as exc:
                notes.append(f"Could not draw {det.detector}'s heatmap over the media: {exc}")
        if png is None:
            png = render_heatmap_only_png(result, detector=det.detector)
        if png is not None:
            width, height = _figure_size(png)
            heatmaps.append({
                "detector": det.detector,
                "uri": _data_uri(png),
                "width": width,
                "height": height,
                "overlay": overlay,
                "frame_time": heatmap_frame_time(det) if result.media_type == "video" else None,
            })
    timeline = render_timeline_png(result)
    spectrogram = None
    if result.media_type == "audio" and media_path is not None:
        try:
            spectrogram = render_spectrogram_png(media_path)
        except (AntifakeError, OSError) as exc:
            notes.append(f"Could not draw the spectrogram: {exc}")
    metadata = media.get("metadata") or {}
    fusion_rows = [
        (k, str(result.fusion[k]))
        for k in ("method", "basis", "ai_threshold", "authentic_threshold", "opinions")
        if k in result.fusion
    ]
    versions = [(d.detector, str(d.details.get("version", "unknown"))) for d in result.detectors]
    return {
        "result": result,
        "file_name": base_name(result.file),
        "sha256": sha256,
        "verdict_class": result.verdict or "none",
        "verdict_label": _VERDICT_LABELS.get(result.verdict or "", "No verdict"),
        "fusion_rows": fusion_rows,
        "media_rows": _media_rows(result),
        "heatmaps": heatmaps,
        "timeline_uri": _data_uri(timeline) if timeline else None,
        "spectrogram_uri": _data_uri(spectrogram) if spectrogram else None,
        "visual_notes": notes,
        "metadata_json": _to_json(_truncate_strings(metadata)) if metadata else "",
        "detector_versions": versions,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "report_version": __version__,
    }


def render_report_html(result: AnalysisResult, media_path: str | Path | None = None) -> str:
    """The self-contained HTML report of ``result``.

    With ``media_path`` (the analysed file, still on disk) the heatmaps are drawn over the
    image / video frame; without it, or when it cannot be decoded, the heatmaps are shown
    alone and the report says so.
    """
    return _environment().get_template("report.html").render(**_context(result, media_path))


def render_report_pdf(result: AnalysisResult, media_path: str | Path | None = None) -> bytes:
    """The report of :func:`render_report_html` as PDF (WeasyPrint, needs Pango)."""
    # Imported here: WeasyPrint loads Pango through cffi, which takes a moment and is only
    # needed for PDF.
    import weasyprint
    from weasyprint.urls import URLFetcher

    html = render_report_html(result, media_path)
    # data: URIs only: rendering a report never touches the network or the file system.
    fetcher = URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
    # presentational_hints: honour the <img width/height> attributes the template sets.
    pdf = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf(presentational_hints=True)
    if pdf is None:  # only when a target is given; keeps the return type honest
        raise RuntimeError("WeasyPrint returned no PDF")
    return bytes(pdf)
