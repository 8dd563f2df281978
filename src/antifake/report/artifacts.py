"""Files written by ``antifake scan --heatmap DIR``."""

from __future__ import annotations

import re
from pathlib import Path

from antifake.report.images import render_heatmap_png, render_timeline_png
from antifake.results import AnalysisResult

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("._") or "detector"


def write_scan_artifacts(
    result: AnalysisResult, media_path: str | Path, out_dir: str | Path
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
    stem = _safe(Path(media_path).stem)
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
