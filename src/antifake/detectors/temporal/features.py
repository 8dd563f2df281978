"""Frame-pair decoding and per-pair temporal-consistency features.

Everything here works on small greyscale frames (``WORK_WIDTH`` px wide) so that a 720p
video is analysed far faster than real time on a laptop CPU. Decoding is a stream: only the
previous frame is kept, so memory stays flat however long the video is.

Per consecutive pair (t, t+1) we estimate dense optical flow (OpenCV DIS) and measure how
well frame t, warped by that flow, explains frame t+1 - for the image itself and for its
high-pass (noise/texture) residual. Camera footage obeys a physical image-formation model:
texture is carried along by the motion and sensor noise is temporally independent but
stationary in level. Video diffusion models synthesise texture per frame in a latent space,
which shows as texture that "boils" (high residual flicker after motion compensation),
energy that pulses from frame to frame, and flow fields that are less self-consistent.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from antifake.errors import AntifakeError, ErrorCode
from antifake.media.video import keyframes_at_or_before

WORK_WIDTH = 320  # analysis width in px; height follows the aspect ratio (even)
MIN_WORK_HEIGHT = 32

# The feature vector, in order. Names are stored with the model so a mismatch is caught.
FEATURE_NAMES: tuple[str, ...] = (
    "log_motion",  # log(1 + mean flow magnitude in px at WORK_WIDTH)
    "warp_err_norm",  # mean |I1 - warp(I0)| / mean |grad I1|
    "warp_err_hf_ratio",  # warping error of the high-pass part / of the low-pass part
    "fb_err",  # mean forward-backward flow inconsistency (px)
    "fb_bad_frac",  # fraction of pixels with inconsistency > 1 px + 5 % of |flow|
    "flow_roughness",  # mean |grad flow| / (mean |flow| + 0.5)
    "div_std",  # spatial std of flow divergence
    "curl_std",  # spatial std of flow curl
    "res_flicker",  # mean |r1 - warp(r0)| / mean(|r1| + |warp r0|) * 2
    "res_corr",  # correlation of r1 with warp(r0) (motion-compensated noise correlation)
    "res_corr_static",  # correlation of r1 with r0 without motion compensation
    "res_energy_jump",  # |log E(r1) - log E(r0)|: texture energy pulsing
    "res_to_grad",  # log mean |r1| / mean |grad I1|: how much fine texture there is
    "brightness_jump",  # |mean I1 - mean I0| / std I1
)


@dataclass
class FramePair:
    """Two consecutive decoded frames as float32 greyscale at the working size."""

    index: int  # decoded index of the second frame
    time_s: float  # presentation time of the second frame
    prev: np.ndarray
    cur: np.ndarray


# Seek when the next wanted frame is this far ahead (see iter_frame_pairs); PyAV's names of
# the demuxers whose seek index we trust.
SEEK_MIN_GAP_S = 5.0
_SEEKABLE = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"}


def work_size(width: int, height: int, work_width: int = WORK_WIDTH) -> tuple[int, int]:
    """The (w, h) frames are analysed at: ``work_width`` wide, even height."""
    h = max(MIN_WORK_HEIGHT, int(round(height * work_width / max(1, width) / 2)) * 2)
    return work_width, h


def _frame_time(frame: av.VideoFrame, fallback_index: int, fps: float) -> float:
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    return fallback_index / fps if fps > 0 else float(fallback_index)


def _stream_timing(container: av.container.InputContainer) -> tuple[float, float, bool]:
    """(fps, start time in s, whether indices can be derived from timestamps) of the
    first video stream, as :func:`iter_frame_pairs` uses them."""
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    fps = float(rate) if rate else 25.0
    time_base = stream.time_base
    start_s = float(stream.start_time * time_base) if (
        stream.start_time is not None and time_base is not None) else 0.0
    seekable = (time_base is not None and bool(stream.average_rate)
                and container.format.name in _SEEKABLE)
    return fps, start_s, seekable


def keyframe_indices_at_or_before(path: Path | str, indices: list[int]) -> list[int | None]:
    """Decoded index of the last keyframe at or before each of ``indices``, read from the
    container's seek index without decoding (None where it cannot be told: a container
    :func:`iter_frame_pairs` does not seek in, or see
    :func:`antifake.media.video.keyframes_at_or_before`)."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError):
        return [None] * len(indices)
    with container:
        if not container.streams.video:
            return [None] * len(indices)
        fps, start_s, seekable = _stream_timing(container)
        if not seekable:
            return [None] * len(indices)
        times = keyframes_at_or_before(
            container, container.streams.video[0], [i / fps for i in indices], start_s)
    return [None if t is None else min(i, int(round(t * fps)))
            for i, t in zip(indices, times, strict=True)]


def iter_frame_pairs(
    path: Path | str,
    pair_starts: set[int] | None = None,
    *,
    max_decoded_frames: int = 500_000,
    max_pixels: int = 16_000_000,
    stop_after: int | None = None,
    work_width: int = WORK_WIDTH,
    pair_gap: int = 1,
    keyframes: Collection[int] = (),
) -> Iterator[FramePair]:
    """Decode ``path`` sequentially and yield (frame i-gap, frame i) pairs.

    ``pair_starts``: decoded indices ``i`` of the *second* frame of each wanted pair, or
    None for every pair. Only frames that belong to a wanted pair are converted, the rest
    are merely decoded. ``pair_gap`` > 1 pairs frames further apart (used by training to
    simulate lower frame rates). ``keyframes``: decoded indices known to be keyframes (see
    :func:`keyframe_indices_at_or_before`); a wanted frame with one of them shortly before
    it is reached by seeking to that keyframe, even when it is close. Raises
    ``too_large``/``corrupt_media`` like the media layer.
    """
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise AntifakeError(ErrorCode.CORRUPT_MEDIA, f"cannot open video: {exc}") from exc
    with container:
        if not container.streams.video:
            raise AntifakeError(ErrorCode.UNSUPPORTED_MEDIA, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        cc = stream.codec_context
        # FFmpeg refuses larger frames before allocating them (see media/video.py).
        cc.options = {**cc.options, "max_pixels": str(int(max_pixels))}
        if cc.width and cc.height and cc.width * cc.height > max_pixels:
            raise AntifakeError(
                ErrorCode.TOO_LARGE, f"frame {cc.width}x{cc.height} exceeds the pixel limit"
            )
        fps, start_s, seekable = _stream_timing(container)
        wanted_prev = None if pair_starts is None else {i - pair_gap for i in pair_starts}
        history: dict[int, np.ndarray] = {}
        size: tuple[int, int] | None = None
        last_wanted = max(pair_starts) if pair_starts else None
        # Sparse pairs over a long clip: seek to each group instead of decoding every frame
        # (only for containers with a seek index and a declared frame rate; indices after
        # a seek come from the timestamps, round(t * fps), which is the decoded index of a
        # constant-frame-rate stream).
        needed = (sorted(set(pair_starts) | (wanted_prev or set()))
                  if pair_starts is not None else [])
        time_base = stream.time_base
        can_seek = bool(needed) and seekable
        gap_frames = SEEK_MIN_GAP_S * fps
        known_keys = sorted(keyframes)
        seek_back_s = 1.0
        seek_to: float | None = None
        force_seek = False
        seek_goal = -1
        seeked = False
        pos = 0
        index = -1
        index_before_seek = -1
        decoded = 0
        decoder = container.decode(stream)
        try:
            while True:
                while pos < len(needed) and needed[pos] <= index:
                    pos += 1
                # A known keyframe after the current frame and at or before the next
                # wanted one: seeking to it decodes nothing before it.
                j = bisect_right(known_keys, needed[pos]) - 1 if pos < len(needed) else -1
                key = known_keys[j] if j >= 0 and known_keys[j] > index + 1 else None
                if can_seek and index >= 0 and pos < len(needed) and (force_seek or (
                        needed[pos] != seek_goal and (needed[pos] - index > gap_frames or (
                            key is not None and needed[pos] - index > 2)))):
                    # One seek per wanted frame (then decode on from wherever it landed),
                    # more only when it landed too late.
                    if key is not None and not force_seek:
                        seek_to = (key + 0.25) / fps  # lands on that keyframe
                    else:
                        seek_to = max(0.0, needed[pos] / fps - seek_back_s)
                    force_seek = False
                    seek_goal = needed[pos]
                    container.seek(int(round((seek_to + start_s) / (time_base or 1))),
                                   backward=True, any_frame=False, stream=stream)
                    decoder = container.decode(stream)
                    seeked = True
                    index_before_seek = index
                frame = next(decoder, None)
                if frame is None:
                    return
                decoded += 1
                if decoded > max_decoded_frames:
                    raise AntifakeError(
                        ErrorCode.TOO_LARGE, f"more than {max_decoded_frames} frames decoded"
                    )
                if frame.width * frame.height > max_pixels:
                    raise AntifakeError(ErrorCode.TOO_LARGE, "frame exceeds the pixel limit")
                if seeked:
                    if frame.pts is None or frame.time_base is None:
                        raise AntifakeError(ErrorCode.CORRUPT_MEDIA,
                                            "video frame without a timestamp after a seek")
                    index = int(round((float(frame.pts * frame.time_base) - start_s) * fps))
                    if seek_to is not None:
                        expected, seek_to = int(round(seek_to * fps)), None
                        if expected > 0 and index > expected:
                            # Landed after the requested time (sparse or inexact index): a
                            # wanted frame may lie before it, so seek further back.
                            seek_back_s *= 4
                            force_seek = True
                            index = index_before_seek
                            continue
                else:
                    index += 1
                    if frame.pts is None:
                        can_seek = False
                is_second = pair_starts is None or index in pair_starts
                is_first = wanted_prev is None or index in wanted_prev
                if not (is_second or is_first):
                    continue
                if size is None:
                    size = work_size(frame.width, frame.height, work_width)
                grey = frame.reformat(
                    width=size[0], height=size[1], format="gray", interpolation="AREA"
                ).to_ndarray()
                cur = np.asarray(grey, dtype=np.float32)
                prev = history.pop(index - pair_gap, None)
                if is_second and prev is not None:
                    yield FramePair(index, _frame_time(frame, index, fps), prev, cur)
                    if stop_after is not None and index >= stop_after:
                        return
                if is_first:
                    history[index] = cur
                # Bounded memory: keep only the frames a later pair can still use.
                for old in [k for k in history if k <= index - pair_gap]:
                    del history[old]
                if last_wanted is not None and index >= last_wanted:
                    return
        except av.FFmpegError as exc:
            raise AntifakeError(ErrorCode.CORRUPT_MEDIA, f"video decoding failed: {exc}") from exc


_DIS: cv2.DISOpticalFlow | None = None


def _dis() -> cv2.DISOpticalFlow:
    global _DIS
    if _DIS is None:
        _DIS = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return _DIS


def _warp(img: np.ndarray, flow: np.ndarray, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Backward warp: sample ``img`` at (x + flow_x, y + flow_y)."""
    map_x = grid[0] + flow[..., 0]
    map_y = grid[1] + flow[..., 1]
    return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _analysis_mask(h: int, w: int) -> np.ndarray:
    """Pixels used for statistics: a 4 % border is dropped (warping is undefined at the
    edges) and so is the bottom-right corner where generator logos (Runway) sit, so a
    static logo can never be what the model learns."""
    mask = np.zeros((h, w), dtype=bool)
    by, bx = max(2, h // 25), max(2, w // 25)
    mask[by : h - by, bx : w - bx] = True
    mask[int(h * 0.82) :, int(w * 0.72) :] = False
    return mask


def _highpass(img: np.ndarray) -> np.ndarray:
    return img - cv2.GaussianBlur(img, (0, 0), 1.0)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-6 else 0.0


def pair_features(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """The :data:`FEATURE_NAMES` vector for one pair of float32 greyscale frames."""
    h, w = cur.shape
    prev8 = np.clip(prev, 0, 255).astype(np.uint8)
    cur8 = np.clip(cur, 0, 255).astype(np.uint8)
    dis = _dis()
    # flow_b maps cur -> prev: warp(prev, flow_b) predicts cur.
    flow_b = np.asarray(dis.calc(cur8, prev8, None))  # type: ignore[call-overload]
    flow_f = np.asarray(dis.calc(prev8, cur8, None))  # type: ignore[call-overload]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid = (gx, gy)
    mask = _analysis_mask(h, w)
    eps = 1e-3

    warped = _warp(prev, flow_b, grid)
    err = np.abs(cur - warped)
    grad = np.abs(cv2.Sobel(cur, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(
        cv2.Sobel(cur, cv2.CV_32F, 0, 1, ksize=3)
    )
    grad_mean = float(grad[mask].mean()) / 8.0 + eps
    warp_err_norm = float(err[mask].mean()) / grad_mean

    r_cur = _highpass(cur)
    r_prev = _highpass(prev)
    r_warp = _warp(r_prev, flow_b, grid)
    lp_err = np.abs((cur - r_cur) - (warped - r_warp))
    hf_err = np.abs(r_cur - r_warp)
    warp_err_hf_ratio = float(hf_err[mask].mean()) / (float(lp_err[mask].mean()) + eps)

    # Forward-backward consistency: flow_f(x) + flow_b(x + flow_f(x)) ~ 0 where visible.
    fb = flow_f + _warp(flow_b, flow_f, grid)
    fb_mag = np.sqrt((fb * fb).sum(-1))
    mag_f = np.sqrt((flow_f * flow_f).sum(-1))
    fb_err = float(fb_mag[mask].mean())
    fb_bad_frac = float((fb_mag[mask] > 1.0 + 0.05 * mag_f[mask]).mean())

    mag_b = np.sqrt((flow_b * flow_b).sum(-1))
    motion = float(mag_b[mask].mean())
    du_dx = cv2.Sobel(flow_b[..., 0], cv2.CV_32F, 1, 0, ksize=3) / 8.0
    du_dy = cv2.Sobel(flow_b[..., 0], cv2.CV_32F, 0, 1, ksize=3) / 8.0
    dv_dx = cv2.Sobel(flow_b[..., 1], cv2.CV_32F, 1, 0, ksize=3) / 8.0
    dv_dy = cv2.Sobel(flow_b[..., 1], cv2.CV_32F, 0, 1, ksize=3) / 8.0
    rough = np.abs(du_dx) + np.abs(du_dy) + np.abs(dv_dx) + np.abs(dv_dy)
    flow_roughness = float(rough[mask].mean()) / (motion + 0.5)
    div_std = float((du_dx + dv_dy)[mask].std())
    curl_std = float((dv_dx - du_dy)[mask].std())

    a_cur = np.abs(r_cur[mask])
    a_warp = np.abs(r_warp[mask])
    res_flicker = float(hf_err[mask].mean()) * 2.0 / (float(a_cur.mean() + a_warp.mean()) + eps)
    res_corr = _corr(r_cur[mask], r_warp[mask])
    res_corr_static = _corr(r_cur[mask], r_prev[mask])
    e_cur = float((r_cur[mask] ** 2).mean()) + eps
    e_prev = float((r_prev[mask] ** 2).mean()) + eps
    res_energy_jump = abs(float(np.log(e_cur / e_prev)))
    res_to_grad = float(np.log((float(a_cur.mean()) + eps) / grad_mean))
    sd = float(cur[mask].std()) + 1.0
    brightness_jump = abs(float(cur[mask].mean() - prev[mask].mean())) / sd

    return np.array(
        [
            np.log1p(motion),
            warp_err_norm,
            warp_err_hf_ratio,
            fb_err,
            fb_bad_frac,
            flow_roughness,
            div_std,
            curl_std,
            res_flicker,
            res_corr,
            res_corr_static,
            res_energy_jump,
            res_to_grad,
            brightness_jump,
        ],
        dtype=np.float32,
    )
