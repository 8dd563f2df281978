"""PNG renderings of a result: heatmap overlays, the heatmap alone, the per-frame timeline.

All functions return PNG bytes, or ``None`` when there is nothing to draw (no heatmap, not
a video, no timeline). Errors decoding the media raise :class:`antifake.errors.AntifakeError`
like :func:`antifake.media.open_media` does.

Sizes: every image derived from a result is drawn at its *display size* - the media's
``width x height`` scaled down (never up) so the long side is at most
:data:`MAX_DISPLAY_SIDE` - so the frame and the heatmap-only PNG stack pixel for pixel in
the web page.

Which frame (video): a detector may set ``details["heatmap_frame_time_s"]`` to say which
frame its heatmap belongs to; otherwise the time of its highest ``timeline`` score is used,
otherwise the first frame.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from antifake.config import FrameSampling, Limits
from antifake.results import AnalysisResult, DetectorResult

MAX_DISPLAY_SIDE = 1024
# The alpha of a heat value h is FLOOR + (1 - FLOOR) * h: cold areas keep a faint tint so
# the colour scale stays readable, hot areas are opaque.
ALPHA_FLOOR = 0.25
COLORMAP = cv2.COLORMAP_TURBO


def pick_heatmap_detector(
    result: AnalysisResult, detector: str | None = None
) -> DetectorResult | None:
    """The detector whose heatmap is shown: ``detector`` if named, else the highest score.

    Returns ``None`` when the named detector (or every detector) has no heatmap.
    """
    with_maps = [d for d in result.detectors if d.heatmap is not None]
    if detector is not None:
        return next((d for d in with_maps if d.detector == detector), None)
    if not with_maps:
        return None
    # max() keeps the first of equals, so ties go to the detector that ran first.
    return max(with_maps, key=lambda d: -1.0 if d.score is None else d.score)


def display_size(
    result: AnalysisResult, fallback: tuple[int, int] | None = None
) -> tuple[int, int]:
    """(width, height) at which frames and heatmaps of ``result`` are drawn."""
    media = result.media or {}
    width, height = int(media.get("width") or 0), int(media.get("height") or 0)
    if width <= 0 or height <= 0:
        if fallback is None:
            raise ValueError("result has no media size and no fallback size was given")
        width, height = fallback
    scale = min(1.0, MAX_DISPLAY_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def heatmap_frame_time(det: DetectorResult | None) -> float:
    """Seconds into the video of the frame a detector's heatmap belongs to (see module doc)."""
    if det is None:
        return 0.0
    declared = det.details.get("heatmap_frame_time_s")
    if isinstance(declared, int | float) and np.isfinite(declared) and declared >= 0:
        return float(declared)
    if det.timeline and det.timeline_times_s and len(det.timeline_times_s) == len(det.timeline):
        best = int(np.argmax(np.asarray(det.timeline, dtype=float)))
        return float(det.timeline_times_s[best])
    return 0.0


def _decode_frame(media_path: str | Path, time_s: float, limits: Limits | None) -> np.ndarray:
    """RGB uint8 frame at (the first frame at or after) ``time_s``; images: the image."""
    from antifake.media import open_media

    media = open_media(media_path, limits)
    preview = getattr(media, "preview", None)
    if preview is not None:  # a still image: reduce before converting (bounded memory)
        return np.asarray(preview(MAX_DISPLAY_SIDE))
    chosen: np.ndarray | None = None
    # Sampling at one frame per `time_s` seconds makes the selector convert only the first
    # frame and the wanted one to RGB (decoding up to it is sequential either way).
    sampling = (
        FrameSampling(mode="fps", fps=1.0 / time_s, max_frames=None)
        if time_s > 1e-3
        else FrameSampling(mode="all", max_frames=1)
    )
    for frame in media.frames(sampling):
        chosen = frame.rgb
        if media.info.media_type == "image" or frame.time_s >= time_s - 1e-3:
            break
    if chosen is None:  # open_media already decoded a first frame, so this is a bug
        raise RuntimeError(f"no frame decoded from {media_path}")
    return chosen


def _normalised_heat(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Heatmap as float32 in [0, 1] resized to ``size`` (width, height); NaN -> 0."""
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim == 3:  # tolerate HxWx1
        heat = heat[..., 0]
    heat = np.clip(np.nan_to_num(heat, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return cv2.resize(heat, size, interpolation=cv2.INTER_LINEAR)


def _colour(heat: np.ndarray) -> np.ndarray:
    """HxW [0, 1] -> HxWx3 uint8 RGB through the colormap."""
    bgr = cv2.applyColorMap(np.round(heat * 255).astype(np.uint8), COLORMAP)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _alpha(heat: np.ndarray) -> np.ndarray:
    return ALPHA_FLOOR + (1.0 - ALPHA_FLOOR) * heat


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


SPECTROGRAM_MAX_S = 120.0  # seconds of sound drawn: bounded work and memory per request


def render_spectrogram_png(
    media_path: str | Path, limits: Limits | None = None, width_px: int = 960,
    height_px: int = 240,
) -> bytes:
    """The first :data:`SPECTROGRAM_MAX_S` seconds of a file's sound as a spectrogram
    (the log linear-filterbank energies the ``synthetic_speech`` detector reads, 0-8 kHz,
    low frequencies at the bottom), time left to right. Raises ``AntifakeError`` for
    undecodable media and when there is no sound."""
    from antifake.detectors.synthetic_speech.features import log_filterbank
    from antifake.errors import AntifakeError, ErrorCode
    from antifake.media import open_media

    media = open_media(media_path, limits)
    chunks = getattr(media, "audio_chunks", None)
    parts = list(chunks(max_seconds=SPECTROGRAM_MAX_S)) if chunks is not None else []
    wave = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if wave.size < 400:
        raise AntifakeError(ErrorCode.UNSUPPORTED_MEDIA, "no sound to draw")
    spec = log_filterbank(wave).T[::-1]  # bands x frames, high frequencies on top
    lo, hi = np.percentile(spec, 5), np.percentile(spec, 99.5)
    norm = np.clip((spec - lo) / max(1e-6, hi - lo), 0, 1)
    img = cv2.resize((norm * 255).astype(np.uint8), (width_px, height_px),
                     interpolation=cv2.INTER_AREA if norm.shape[1] > width_px
                     else cv2.INTER_LINEAR)
    rgb = cv2.cvtColor(cv2.applyColorMap(img, cv2.COLORMAP_MAGMA), cv2.COLOR_BGR2RGB)
    return _png(np.ascontiguousarray(rgb))


def render_frame_png(
    result: AnalysisResult,
    media_path: str | Path,
    detector: str | None = None,
    limits: Limits | None = None,
) -> bytes | None:
    """The image, or the video frame the shown heatmap belongs to, at display size.

    Returns ``None`` for a failed result (no media type); for audio, the spectrogram
    (:func:`render_spectrogram_png`).
    """
    if result.media_type is None:
        return None
    if result.media_type == "audio":
        return render_spectrogram_png(media_path, limits)
    det = pick_heatmap_detector(result, detector)
    rgb = _decode_frame(media_path, heatmap_frame_time(det), limits)
    size = display_size(result, fallback=(rgb.shape[1], rgb.shape[0]))
    if (rgb.shape[1], rgb.shape[0]) != size:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return _png(np.ascontiguousarray(rgb))


def render_heatmap_only_png(result: AnalysisResult, detector: str | None = None) -> bytes | None:
    """The coloured heatmap as RGBA (alpha = heat) at display size, or ``None``.

    Meant to be stacked over :func:`render_frame_png` with a CSS opacity: at opacity ``o``
    the stack looks like :func:`render_heatmap_png` with ``opacity=o``.
    """
    det = pick_heatmap_detector(result, detector)
    if det is None or det.heatmap is None:
        return None
    hm = np.asarray(det.heatmap)
    size = display_size(result, fallback=(hm.shape[1], hm.shape[0]))
    heat = _normalised_heat(hm, size)
    rgba = np.dstack([_colour(heat), np.round(_alpha(heat) * 255).astype(np.uint8)])
    return _png(rgba)


def render_heatmap_png(
    result: AnalysisResult,
    media_path: str | Path,
    detector: str | None = None,
    opacity: float = 0.5,
    limits: Limits | None = None,
) -> bytes | None:
    """The heatmap blended over the image / its video frame (RGB PNG), or ``None``.

    ``detector`` picks one detector's heatmap; by default the highest-scoring detector
    with a heatmap. ``opacity`` in [0, 1] scales the heatmap's per-pixel alpha.
    """
    det = pick_heatmap_detector(result, detector)
    if det is None or det.heatmap is None:
        return None
    opacity = float(min(1.0, max(0.0, opacity)))
    rgb = _decode_frame(media_path, heatmap_frame_time(det), limits)
    size = display_size(result, fallback=(rgb.shape[1], rgb.shape[0]))
    if (rgb.shape[1], rgb.shape[0]) != size:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    heat = _normalised_heat(np.asarray(det.heatmap), size)
    a = (_alpha(heat) * opacity)[..., None]
    blended = rgb.astype(np.float32) * (1.0 - a) + _colour(heat).astype(np.float32) * a
    return _png(np.clip(np.round(blended), 0, 255).astype(np.uint8))


def timeline_detectors(result: AnalysisResult) -> list[DetectorResult]:
    """Detectors with a usable per-frame timeline (matching times, at least one point)."""
    return [
        d
        for d in result.detectors
        if d.timeline
        and d.timeline_times_s is not None
        and len(d.timeline_times_s) == len(d.timeline)
    ]


def render_timeline_png(
    result: AnalysisResult, width_px: int = 960, height_px: int = 320
) -> bytes | None:
    """Per-frame scores of a video (per-window scores of audio), one line per detector
    (for audio with the synthetic-speech threshold).

    Returns ``None`` for images and for media without any detector timeline.
    """
    if result.media_type not in ("video", "audio"):
        return None
    series = timeline_detectors(result)
    if not series:
        return None
    # The object-oriented API with the Agg canvas: no pyplot global state, so it is safe
    # from several server threads and never needs a display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for det in series:
        times = det.timeline_times_s or []
        marker = "o" if len(times) <= 40 else None
        ax.plot(times, det.timeline or [], label=det.detector, linewidth=1.6, marker=marker,
                markersize=3)
    # Per-detector curves carry no fused threshold: an authentic video's curve crossing it
    # would read as AI frames (issue 10). Audio has one voting detector; its own threshold
    # is drawn.
    if result.media_type == "audio":
        speech = [d for d in series if d.detector == "synthetic_speech"]
        threshold = speech[0].details.get("threshold") if speech else None
        if isinstance(threshold, int | float):
            ax.axhline(float(threshold), color="#c0392b", linestyle="--", linewidth=1.0,
                       label=f"synthetic-speech threshold ({threshold:.2f})")
    duration = (result.media or {}).get("duration_s")
    last_t = max(max(d.timeline_times_s or [0.0]) for d in series)
    right = float(duration) if isinstance(duration, int | float) and duration > 0 else last_t
    ax.set_xlim(0.0, max(right, last_t, 1e-3))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(synthetic) per 2-s window" if result.media_type == "audio"
                  else "P(AI) per frame")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
