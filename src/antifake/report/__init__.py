"""Human-facing renderings of an :class:`~antifake.results.AnalysisResult`.

Heatmap overlays and timelines as PNG, the forensic report as self-contained HTML or PDF,
and the files of ``antifake scan --heatmap``. Core-level: no web code; the API serves
these bytes as they are (contract in ``docs/web.md``).
"""

from antifake.report.artifacts import (
    UniqueStems,
    write_batch_index,
    write_csv,
    write_report_file,
    write_scan_artifacts,
)
from antifake.report.html import render_report_html, render_report_pdf
from antifake.report.images import (
    display_size,
    pick_heatmap_detector,
    render_frame_png,
    render_heatmap_only_png,
    render_heatmap_png,
    render_timeline_png,
)

__all__ = [
    "display_size",
    "pick_heatmap_detector",
    "render_frame_png",
    "render_heatmap_only_png",
    "render_heatmap_png",
    "render_report_html",
    "render_report_pdf",
    "render_timeline_png",
    "write_scan_artifacts",
    "UniqueStems",
    "write_batch_index",
    "write_csv",
    "write_report_file",
]
