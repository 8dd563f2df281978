"""antifake.report: heatmap/timeline PNGs, the HTML/PDF report, scan artifacts."""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from antifake.config import FrameSampling
from antifake.media import open_media
from antifake.report import (
    render_frame_png,
    render_heatmap_only_png,
    render_heatmap_png,
    render_report_html,
    render_report_pdf,
    render_timeline_png,
    write_scan_artifacts,
)
from antifake.report.images import MAX_DISPLAY_SIDE, heatmap_frame_time
from antifake.results import AnalysisResult, DetectorResult, GeneratorGuess
from synth import write_image, write_video

HOSTILE = "<script>alert(1)</script>"


def _result_for(path: Path, display_name: str | None = None, video_scores: bool = True
                ) -> AnalysisResult:
    """A realistic result: real media info from open_media, two detectors with evidence."""
    info = open_media(path).info
    yy, xx = np.mgrid[0:16, 0:24]
    blob = np.exp(-(((xx - 18) / 4.0) ** 2 + ((yy - 4) / 3.0) ** 2)).astype(np.float32)
    forensic = DetectorResult(
        detector="forensic_cnn", score=0.91, kind="forensic",
        summary=f"upsampling artefacts ({HOSTILE})",
        evidence=[f"peak in the top-right region; XMP says {HOSTILE}"],
        details={"version": "cnn-1.2.3", "note": HOSTILE},
        generator=GeneratorGuess("diffusion", 0.7, name="Stable Diffusion XL"),
        heatmap=blob, elapsed_ms=12.5,
    )
    splice = DetectorResult(
        detector="splice_map", score=0.40, kind="splicing", summary="weak splice evidence",
        details={"version": "splice-0.1"}, heatmap=np.full((8, 8), 0.2, np.float32),
        elapsed_ms=3.0,
    )
    detectors = [forensic, splice]
    if info.media_type == "video" and video_scores:
        times = [i / 12 for i in range(12)]
        forensic.timeline = [0.2 + 0.06 * i for i in range(12)]
        forensic.timeline_times_s = times
        detectors.append(DetectorResult(
            detector="temporal", score=0.6, kind="temporal", summary="flicker",
            details={"version": "temporal-0.2"}, timeline=[0.5] * 12, timeline_times_s=times,
        ))
    return AnalysisResult(
        file=display_name or str(path), media_type=info.media_type, verdict="ai_generated",
        ai_probability=0.93, generator=forensic.generator, detectors=detectors,
        media={**info.to_dict(), "metadata": {**info.metadata, "exif": {"Artist": HOSTILE}}},
        engine_version="0.1.0", analyzed_at="2026-01-02T03:04:05Z",
        fusion={"method": "evidence-logodds-v1", "ai_threshold": 0.8,
                "authentic_threshold": 0.2},
    )


def _png(data: bytes | None) -> Image.Image:
    assert data is not None and data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data))


@pytest.fixture()
def image_path(tmp_path: Path) -> Path:
    return write_image(tmp_path / "photo.png", width=120, height=40)


@pytest.fixture()
def video_path(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", frames=12, width=64, height=48, fps=12,
                       metadata={"title": HOSTILE, "comment": "made with <b>AI</b>"})


def test_heatmap_png_has_media_aspect_ratio_and_shows_the_heat(image_path: Path) -> None:
    result = _result_for(image_path)
    img = _png(render_heatmap_png(result, image_path))
    assert img.size == (120, 40) and img.mode == "RGB"
    # The blob sits top-right: that corner must differ from the original far more than
    # the bottom-left, where the heat is ~0.
    original = np.asarray(Image.open(image_path).convert("RGB"), dtype=float)
    diff = np.abs(np.asarray(img, dtype=float) - original).mean(axis=2)
    assert diff[:15, 85:].mean() > 2 * diff[25:, :30].mean()


def test_heatmap_defaults_to_highest_score_and_detector_can_be_chosen(image_path: Path) -> None:
    result = _result_for(image_path)
    default = render_heatmap_only_png(result)
    assert default == render_heatmap_only_png(result, detector="forensic_cnn")
    assert default != render_heatmap_only_png(result, detector="splice_map")
    assert render_heatmap_only_png(result, detector="nope") is None


def test_heatmap_only_is_rgba_same_size_as_frame(video_path: Path) -> None:
    result = _result_for(video_path)
    overlay = _png(render_heatmap_only_png(result))
    frame = _png(render_frame_png(result, video_path))
    assert overlay.mode == "RGBA" and frame.mode == "RGB"
    assert overlay.size == frame.size == (64, 48)
    alpha = np.asarray(overlay)[..., 3]
    assert alpha.max() > 240 and alpha.min() < 80  # hot opaque, cold faint


def test_stacked_overlay_equals_blended_png(image_path: Path) -> None:
    """The page's CSS stack (frame + RGBA heatmap at opacity o) == the blended PNG."""
    result = _result_for(image_path)
    frame = np.asarray(_png(render_frame_png(result, image_path)), dtype=float)
    rgba = np.asarray(_png(render_heatmap_only_png(result)), dtype=float)
    a = rgba[..., 3:] / 255 * 0.7
    stacked = frame * (1 - a) + rgba[..., :3] * a
    blended = np.asarray(_png(render_heatmap_png(result, image_path, opacity=0.7)), dtype=float)
    assert np.abs(stacked - blended).max() <= 2.0


def test_large_media_is_scaled_down_keeping_aspect(tmp_path: Path) -> None:
    path = write_image(tmp_path / "big.jpg", width=2000, height=500)
    result = _result_for(path)
    img = _png(render_heatmap_png(result, path))
    assert img.size == (MAX_DISPLAY_SIDE, 256)


def test_video_heatmap_uses_the_most_suspicious_frame(video_path: Path) -> None:
    result = _result_for(video_path)
    forensic = result.detectors[0]
    assert heatmap_frame_time(forensic) == pytest.approx(11 / 12)
    forensic.details["heatmap_frame_time_s"] = 0.0
    first = render_frame_png(result, video_path)
    forensic.details["heatmap_frame_time_s"] = 0.5
    at_half = render_frame_png(result, video_path)
    assert at_half != first
    frames = list(open_media(video_path).frames(FrameSampling(mode="all", max_frames=None)))
    wanted = next(f for f in frames if f.time_s >= 0.5 - 1e-3)
    assert np.array_equal(np.asarray(_png(at_half)), wanted.rgb)
    assert np.array_equal(np.asarray(_png(first)), frames[0].rgb)


def test_no_heatmap_no_png(image_path: Path) -> None:
    result = _result_for(image_path)
    for d in result.detectors:
        d.heatmap = None
    assert render_heatmap_png(result, image_path) is None
    assert render_heatmap_only_png(result) is None


def test_timeline_png_only_for_videos(image_path: Path, video_path: Path) -> None:
    video = _result_for(video_path)
    img = _png(render_timeline_png(video))
    assert img.size == (960, 320)
    assert render_timeline_png(_result_for(image_path)) is None
    assert render_timeline_png(_result_for(video_path, video_scores=False)) is None


def _hostile_video(tmp_path: Path) -> tuple[Path, AnalysisResult]:
    path = write_video(tmp_path / "x<img src=x onerror=alert(2)>.mp4", frames=12,
                       metadata={"title": HOSTILE})
    return path, _result_for(path, display_name=f"{HOSTILE}.mp4")


def test_report_html_is_self_contained_and_escapes_hostile_input(tmp_path: Path) -> None:
    path, result = _hostile_video(tmp_path)
    assert result.media is not None
    assert result.media["metadata"]["container_tags"]["title"] == HOSTILE  # really in there
    html = render_report_html(result, path)
    assert "<script" not in html.lower()
    assert "onerror=" not in html.replace("onerror=alert(2)&gt;", "")  # only escaped text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "<link" not in html.lower()
    srcs = re.findall(r"""<img[^>]*\ssrc="([^"]*)\"""", html)
    assert len(srcs) == 3 and all(
        s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in srcs)
    assert result.media["sha256"] in html
    for det in result.detectors:
        assert det.detector in html and str(det.details["version"]) in html
    assert "AI-generated" in html and "93.0%" in html and "Stable Diffusion XL" in html
    assert "2026-01-02T03:04:05Z" in html


def test_report_html_without_media_still_complete(image_path: Path) -> None:
    result = _result_for(image_path)
    html = render_report_html(result)  # no media_path: heatmaps alone
    assert result.media is not None and result.media["sha256"] in html
    assert html.count("data:image/png;base64,") == 2
    assert "heatmap only" in html


def test_report_names_the_format_lines_behind_the_threshold(image_path: Path) -> None:
    """A reviewer sees which per-format operating lines set the AI threshold."""
    result = _result_for(image_path)
    assert "format_groups" not in render_report_html(result)
    result.fusion["format_groups"] = ["PNG", "<=256 px"]
    html = render_report_html(result)
    assert "format_groups" in html and "PNG, &lt;=256 px" in html


def test_report_of_failed_analysis(tmp_path: Path) -> None:
    result = AnalysisResult(
        file=f"{HOSTILE}.png", media_type=None, verdict=None, ai_probability=None,
        error={"code": "corrupt_media", "message": f"bad {HOSTILE}"},
    )
    html = render_report_html(result)
    assert "corrupt_media" in html and "<script>" not in html


def _pdf_page_count(pdf: bytes) -> int:
    """Page objects in a PDF, looking inside (Flate-compressed) object streams too."""
    bodies = [pdf]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            bodies.append(zlib.decompress(m.group(1)))
        except zlib.error:
            continue  # image data and the like
    return sum(len(re.findall(rb"/Type\s*/Page(?![s\w])", b)) for b in bodies)


def test_report_pdf(tmp_path: Path) -> None:
    pytest.importorskip("weasyprint")
    path, result = _hostile_video(tmp_path)
    pdf = render_report_pdf(result, path)
    assert pdf.startswith(b"%PDF-")
    assert _pdf_page_count(pdf) >= 1
    assert b"%%EOF" in pdf[-64:]


def test_write_scan_artifacts(tmp_path: Path, video_path: Path, image_path: Path) -> None:
    out = tmp_path / "out"
    written = write_scan_artifacts(_result_for(video_path), video_path, out)
    names = sorted(p.name for p in written)
    assert names == [
        "clip.heatmap.forensic_cnn.png", "clip.heatmap.png", "clip.heatmap.splice_map.png",
        "clip.timeline.png",
    ]
    assert all(p.is_file() and p.read_bytes()[:4] == b"\x89PNG" for p in written)
    image_written = write_scan_artifacts(_result_for(image_path), image_path, out)
    assert "photo.timeline.png" not in {p.name for p in image_written}
    assert (out / "photo.heatmap.png").is_file()


def test_csv_cells_never_start_a_formula(tmp_path: Path) -> None:
    from antifake.report.artifacts import write_csv
    from antifake.results import AnalysisResult

    r = AnalysisResult(file='=HYPERLINK("http://x","click")', media_type="image",
                       verdict="uncertain", ai_probability=0.5,
                       error=None)
    bad = AnalysisResult(file="@evil.png", media_type=None, verdict=None, ai_probability=None,
                         error={"code": "corrupt_media", "message": "-1+1"})
    out = write_csv([(r, None), (bad, None)], tmp_path / "x.csv").read_text()
    import csv

    rows = list(csv.reader(out.splitlines()))
    assert rows[1][0] == "'=HYPERLINK(\"http://x\",\"click\")" and rows[2][0] == "'@evil.png"
    assert rows[2][8] == "'-1+1"


def test_typical_reports_fit_on_three_pages(tmp_path: Path) -> None:
    """Issue 10: a typical clip's report was 9 pages of JSON; now the first page is the
    verdict, its reasons, the key heatmap with a colour legend and the timeline, and the
    technical appendix is tables."""
    pytest.importorskip("weasyprint")
    from antifake.engine import Engine

    clip = write_video(tmp_path / "clip.mp4", frames=48, fps=12, width=320, height=180)
    result = Engine().analyze(clip)
    pdf = render_report_pdf(result, clip)
    assert 1 <= _pdf_page_count(pdf) <= 3
    html = render_report_html(result, clip)
    assert "<pre>" not in html  # no JSON dumps
    assert 'class="legend"' in html and "linear-gradient" in html
    first = html.split("Appendix")[0]
    for reason in result.reasons:
        assert reason.split(":")[0] in first
    assert "Heatmap of <strong>" in first and "scores over time" in first
