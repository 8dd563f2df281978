"""Video decoding with PyAV, as a stream: frames are decoded and converted one at a time.

:func:`open_video` probes the container and decodes the first frame, so a garbage or
truncated file fails at open time; :meth:`VideoMedia.frames` re-opens the file for each
pass and yields the frames chosen by a :class:`FrameSelector`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from antifake.config import FrameSampling, Limits
from antifake.errors import AntifakeError, ErrorCode, corrupt_media
from antifake.media import orientation
from antifake.media.audio import ANALYSIS_SAMPLE_RATE, iter_audio, probe_audio_stream
from antifake.media.metadata import (
    container_and_stream_tags,
    parse_xmp_fields,
    xmp_from_file,
)
from antifake.media.types import Frame, MediaInfo

# FFmpeg demuxer per sniffed format: forcing it stops FFmpeg's own probing from picking
# some other demuxer for a hostile file.
_DEMUXERS = {"mp4": "mov", "mov": "mov", "webm": "matroska", "mkv": "matroska", "avi": "avi"}


@dataclass(frozen=True)
class FileFacts:
    """What ``open_media`` learned about the file before decoding it."""

    path: Path
    format: str
    mime: str
    size_bytes: int
    sha256: str


class FrameSelector:
    """Decides, frame by frame, which decoded frames a :class:`FrameSampling` keeps.

    Selection is by presentation time: a frame is kept when it is the first one within
    half a frame period of the next wanted time. With ``max_frames`` and a known
    duration the wanted times are spread uniformly over the whole clip; without a known
    duration the first ``max_frames`` matches are kept.

    Sparse ``fps`` sampling (wanted times more than :data:`SNAP_MIN_SPACING_S` apart, e.g.
    the default ``fps=2,max=64`` over a clip longer than about 5 minutes) may be snapped to
    keyframes with :meth:`snap_to_keyframes`: each wanted time is then replaced by the
    keyframe the container's seek index gives at or before it (the last one, when every
    keyframe is indexed, as in mp4/mov), provided it comes more than one frame period
    after the previous wanted time (so at most one sample spacing early, and samples stay
    distinct and in order); a wanted time without such a keyframe stays exact. Decoding a
    keyframe needs no other frame, so a snapped sample costs one decode instead of one per
    frame since the previous keyframe. ``all``, ``keyframes`` and dense ``fps`` sampling
    are never snapped.
    """

    def __init__(
        self,
        sampling: FrameSampling,
        duration_s: float | None,
        frame_count: int | None,
        stream_fps: float | None,
    ) -> None:
        self.cap = sampling.max_frames
        self.kept = 0
        self._mode = sampling.mode
        self._tolerance = 0.5 / stream_fps if stream_fps and stream_fps > 0 else 1e-3
        self._frame_period = 2 * self._tolerance
        self._targets: list[float] | None = None  # explicit wanted times, ascending
        self._snapped: set[int] = set()  # positions in _targets moved onto a keyframe
        self._pos = 0
        self._step: float | None = None  # unbounded arithmetic targets (duration unknown)
        self._next = 0.0
        self._keep_all = False
        cap = self.cap
        known_duration = duration_s if duration_s and duration_s > 0 else None
        last_time = None
        if known_duration is not None:
            frame_period = 1.0 / stream_fps if stream_fps and stream_fps > 0 else 0.0
            last_time = max(0.0, known_duration - frame_period)
        if sampling.mode == "fps":
            step = 1.0 / sampling.fps
            if known_duration is not None and last_time is not None:
                n = int(math.floor(last_time / step + 1e-9)) + 1
                if cap is not None and n > cap:
                    self._targets = _spread(last_time, cap)
                else:
                    self._targets = [k * step for k in range(n)]
            else:
                self._step = step
        else:  # "all" or "keyframes": every decoded frame is a candidate
            estimate = frame_count
            if estimate is None and known_duration and stream_fps:
                estimate = int(round(known_duration * stream_fps))
            if cap is not None and last_time is not None and (
                sampling.mode == "keyframes" or (estimate is not None and estimate > cap)
            ):
                # keyframes: their count is unknown up front; the spread keeps all of them
                # when they are fewer than cap (each one then consumes its own targets).
                self._targets = _spread(last_time, cap)
                if sampling.mode == "keyframes" and cap > 1:
                    # Keyframes are sparse: take the one nearest each wanted time, not
                    # only one within half a frame of it.
                    self._tolerance = max(self._tolerance, 0.5 * last_time / (cap - 1))
            else:
                self._keep_all = True

    @property
    def done(self) -> bool:
        """True once nothing more can be selected: stop decoding."""
        if self.cap is not None and self.kept >= self.cap:
            return True
        return self._targets is not None and self._pos >= len(self._targets)

    @property
    def next_time(self) -> float | None:
        """The next wanted time when the selector has explicit targets (else None)."""
        if self._targets is not None and self._pos < len(self._targets):
            return self._targets[self._pos]
        return None

    @property
    def next_is_keyframe(self) -> bool:
        """True when the next wanted time was snapped onto a keyframe's own time."""
        return self._targets is not None and self._pos in self._snapped

    @property
    def tolerance(self) -> float:
        """How far before a wanted time a frame still counts as that time's frame."""
        return self._tolerance

    @property
    def sparse_targets(self) -> list[float] | None:
        """The wanted times when :meth:`snap_to_keyframes` applies to them, else None:
        ``fps`` sampling with explicit times more than :data:`SNAP_MIN_SPACING_S` apart."""
        t = self._targets
        if self._mode != "fps" or t is None or len(t) < 2 or self._pos > 0:
            return None
        if min(b - a for a, b in zip(t, t[1:], strict=False)) <= SNAP_MIN_SPACING_S:
            return None
        return list(t)

    def snap_to_keyframes(self, keyframe_times: list[float | None]) -> int:
        """Move sparse wanted times onto keyframes; returns how many moved.

        ``keyframe_times[i]`` is the presentation time of the last keyframe at or before
        wanted time ``i`` of :attr:`sparse_targets` (None when unknown). It replaces that
        time when it lies in ``(previous wanted time + one frame period, wanted time]``;
        otherwise the wanted time stays as it is (decoded exactly).
        """
        targets = self.sparse_targets
        if targets is None or len(keyframe_times) != len(targets):
            return 0
        previous = -math.inf
        for i, (wanted, key) in enumerate(zip(targets, keyframe_times, strict=True)):
            if key is not None and previous + self._frame_period < key <= wanted:
                assert self._targets is not None
                self._targets[i] = key
                self._snapped.add(i)
            previous = wanted
        return len(self._snapped)

    def want(self, time_s: float) -> bool:
        """Whether the frame at ``time_s`` (seconds from the stream start) is kept."""
        if self.done:
            return False
        limit = time_s + self._tolerance
        if self._keep_all:
            chosen = True
        elif self._targets is not None:
            chosen = self._targets[self._pos] <= limit
            while self._pos < len(self._targets) and self._targets[self._pos] <= limit:
                self._pos += 1
        else:
            assert self._step is not None
            chosen = self._next <= limit
            while self._next <= limit:
                self._next += self._step
        if chosen:
            self.kept += 1
        return chosen


# Seek instead of decoding through when the next wanted frame is this far ahead: decoding
# 720p H.264 runs at a few hundred frames/s on one core, so sparse samples of a long clip
# (the default fps=2, max 64 spread over the clip) would otherwise decode every frame.
SEEK_MIN_GAP_S = 5.0
# fps samples further apart than this are snapped to keyframes (FrameSelector): seeking to
# an exact time still decodes every frame from the keyframe before it (x264's default
# GOP is 250 frames, ~8 s at 30 fps), a keyframe is one decode.
SNAP_MIN_SPACING_S = SEEK_MIN_GAP_S
# A snapped (keyframe) target is seeked to when more than this lies before it: landing on
# a keyframe decodes nothing else.
KEYFRAME_SEEK_MIN_GAP_S = 0.25
_SEEKABLE = {"mp4", "mov", "mkv", "webm"}


def _spread(last_time: float, count: int) -> list[float]:
    if count == 1:
        return [0.0]
    return [last_time * i / (count - 1) for i in range(count)]


def _cap_decoder_pixels(stream: Any, max_pixels: int) -> None:
    """Make FFmpeg's decoder refuse frames over ``max_pixels`` *before* allocating them.

    The container's dimensions (checked by us) can be small while the bitstream declares a
    huge frame: a 2.8 KiB WebM whose VP9 data asked for ~16k x 16k made the decoder
    allocate ~400 MiB (found by fuzzing). Such a frame now fails to decode (corrupt_media).
    """
    stream.codec_context.options = {**stream.codec_context.options,
                                    "max_pixels": str(int(max_pixels))}


def _as_float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def keyframes_at_or_before(
    container: Any, stream: Any, times_s: list[float], start_time_s: float = 0.0
) -> list[float | None]:
    """Presentation time (from the stream start) of the last keyframe at or before each
    of ``times_s``, from the container's seek index: one backward seek and one demuxed
    packet each, nothing decoded. None where it cannot be told (no index, a packet without
    timestamp or not flagged key, or a landing after the time, as a DTS-based index can
    give with B-frames). Leaves the container at an arbitrary position."""
    time_base = stream.time_base
    out: list[float | None] = []
    for t in times_s:
        found: float | None = None
        try:
            container.seek(int(round((t + start_time_s) / time_base)), backward=True,
                           any_frame=False, stream=stream)
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size and packet.is_keyframe:
                    key = float(packet.pts * time_base) - start_time_s
                    if -1e-6 <= key <= t + 1e-6:
                        found = max(0.0, min(key, t))
                break
        except Exception:  # unseekable or damaged here: that time stays exact
            found = None
        out.append(found)
    return out


class VideoMedia:
    """An opened video file. ``frames()`` streams; nothing is held in memory."""

    def __init__(
        self,
        info: MediaInfo,
        limits: Limits,
        start_time_s: float,
        duration_is_video: bool = False,
    ) -> None:
        self.info = info
        self._limits = limits
        self._start_time_s = start_time_s
        # True when the declared duration is the video track's own (not a longer audio
        # track's): only then can an early end of the stream be called corruption.
        self._duration_is_video = duration_is_video

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def has_audio(self) -> bool:
        """Whether the file has a sound track (``info.sample_rate`` is set from it)."""
        return self.info.sample_rate is not None

    def audio_chunks(self, max_seconds: float | None = None,
                     rate: int = ANALYSIS_SAMPLE_RATE) -> Iterator[np.ndarray]:
        """The sound track as mono float32 chunks (see :func:`antifake.media.audio.iter_audio`);
        nothing when the video has no sound."""
        if not self.has_audio:
            return iter(())
        return iter_audio(self.info.path, self.info.format, self._limits,
                          max_seconds=max_seconds, rate=rate)

    def frames(self, sampling: Any = None) -> Iterator[Frame]:
        """Yield the frames chosen by ``sampling`` (default :class:`FrameSampling`), turned
        as a player shows them (the display matrix, :mod:`antifake.media.orientation`)."""
        sampling = sampling or FrameSampling()
        info = self.info
        limits = self._limits
        selector = FrameSelector(sampling, info.duration_s, info.frame_count, info.fps)
        try:
            container = av.open(str(info.path), format=_DEMUXERS[info.format])
        except Exception as exc:
            raise corrupt_media(f"cannot open {info.format} file", exc) from exc
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            _cap_decoder_pixels(stream, limits.max_video_pixels)
            if sampling.mode == "keyframes":
                stream.codec_context.skip_frame = "NONKEY"
            decoded = 0
            last_time_s = 0.0
            decoder = container.decode(stream)
            # Seeking: only with explicit target times, a seekable container and frames that
            # carry timestamps; selection stays by time, so the frames kept are those a full
            # decode keeps (with the wanted times snapped to keyframes for sparse fps
            # sampling, see FrameSelector). After a seek, indices come from the time
            # (round(t * fps)). In keyframes mode only keyframes are decoded after a seek
            # too, so the first one at or after the wanted time is found as without seeking.
            can_seek = (
                info.format in _SEEKABLE and bool(info.fps) and stream.time_base is not None
            )
            sparse = selector.sparse_targets
            if can_seek and sparse is not None:
                selector.snap_to_keyframes(self._keyframes_at_or_before(sparse))
            seeked = False
            seek_back_s = 1.0
            seek_target: float | None = None
            seek_goal: float | None = None
            while not selector.done:
                wanted = selector.next_time
                on_keyframe = selector.next_is_keyframe
                min_gap = KEYFRAME_SEEK_MIN_GAP_S if on_keyframe else SEEK_MIN_GAP_S
                if (can_seek and wanted is not None and decoded > 0
                        and wanted - last_time_s > min_gap
                        and (wanted != seek_goal or last_time_s == -math.inf)):
                    # One seek per wanted time (then decode on from where it landed), more
                    # only when it landed too late.
                    retry = wanted == seek_goal
                    seek_goal = wanted
                    if on_keyframe and not retry:
                        seek_target = wanted  # a keyframe's own time: decoding starts on it
                    else:
                        seek_target = max(0.0, wanted - selector.tolerance - seek_back_s)
                    offset = int(round((seek_target + self._start_time_s)
                                       / (stream.time_base or 1)))
                    try:
                        container.seek(offset, backward=True, any_frame=False, stream=stream)
                    except Exception:  # unseekable after all: keep decoding through
                        can_seek = False
                    else:
                        seeked = True
                        decoder = container.decode(stream)
                        last_time_s = seek_target
                try:
                    frame = next(decoder)
                except StopIteration:
                    self._check_complete(sampling, decoded, last_time_s)
                    break
                except AntifakeError:
                    raise
                except Exception as exc:
                    raise corrupt_media(
                        f"{info.format} decode error after {decoded} frames", exc
                    ) from exc
                decoded += 1
                if decoded > limits.max_frames:
                    raise AntifakeError(
                        ErrorCode.TOO_LARGE,
                        f"video has more than {limits.max_frames} frames (limit max_frames)",
                    )
                if frame.width * frame.height > limits.max_video_pixels:
                    raise AntifakeError(
                        ErrorCode.TOO_LARGE,
                        f"video frame {frame.width}x{frame.height} exceeds "
                        f"{limits.max_video_pixels} pixels (limit max_video_pixels)",
                    )
                t = frame.time
                if t is None:
                    if seeked:
                        raise corrupt_media(f"{info.format} frame without a timestamp after a seek")
                    can_seek = False
                    time_s = (decoded - 1) / info.fps if info.fps else 0.0
                else:
                    time_s = max(0.0, float(t) - self._start_time_s)
                if seek_target is not None:
                    first_after_seek, seek_target = seek_target, None
                    if first_after_seek > 0.0 and time_s > first_after_seek + 1e-6:
                        # Landed after the requested time (a sparse or inexact index), so a
                        # wanted frame may lie before it: seek further back and decode on.
                        seek_back_s *= 4
                        last_time_s = -math.inf
                        continue
                last_time_s = max(last_time_s, time_s)
                if time_s > limits.max_duration_s:
                    raise AntifakeError(
                        ErrorCode.TOO_LARGE,
                        f"video runs longer than {limits.max_duration_s:.0f} s "
                        "(limit max_duration_s)",
                    )
                if not selector.want(time_s):
                    continue
                try:
                    rgb = frame.to_ndarray(format="rgb24")
                except Exception as exc:
                    raise corrupt_media(
                        f"cannot convert {info.format} frame {decoded - 1}", exc
                    ) from exc
                index = decoded - 1
                if seeked and info.fps:
                    index = int(round(time_s * info.fps))
                if sampling.mode == "keyframes" and info.fps:
                    # Only keyframes were decoded: recover the index in the full stream.
                    index = int(round(time_s * info.fps))
                yield Frame(
                    index=index,
                    time_s=time_s,
                    rgb=orientation.to_display(np.ascontiguousarray(rgb, dtype=np.uint8),
                                               info.orientation),
                    keyframe=bool(frame.key_frame),
                )
        finally:
            container.close()

    def _keyframes_at_or_before(self, times_s: list[float]) -> list[float | None]:
        """:func:`keyframes_at_or_before` on a container of its own (index lookups only)."""
        info = self.info
        try:
            container = av.open(str(info.path), format=_DEMUXERS[info.format])
        except Exception:
            return [None] * len(times_s)
        try:
            stream = container.streams.video[0]
            return keyframes_at_or_before(container, stream, times_s, self._start_time_s)
        finally:
            container.close()

    def _check_complete(self, sampling: FrameSampling, decoded: int, last_time_s: float) -> None:
        """Raise ``corrupt_media`` when the stream stopped far before its declared end.

        FFmpeg's demuxers treat garbage in the middle of a file as end of stream, so a
        damaged file would otherwise look like a short one. Only checked when every frame
        was decoded (not ``keyframes``, whose last keyframe may be long before the end)
        and the duration is the video track's own.
        """
        duration = self.info.duration_s
        if sampling.mode == "keyframes" or not self._duration_is_video or not duration:
            return
        frame_period = 1.0 / self.info.fps if self.info.fps else 0.0
        covered = last_time_s + frame_period if decoded else 0.0
        if covered < 0.5 * duration and duration - covered > 1.0:
            raise corrupt_media(
                f"{self.info.format} stream ends after {decoded} frames at {covered:.2f} s "
                f"but declares {duration:.2f} s (damaged or truncated data)"
            )


def open_video(facts: FileFacts, limits: Limits) -> VideoMedia:
    """Probe a video file: container, first video stream, declared limits, first frame."""
    try:
        container = av.open(
            str(facts.path), format=_DEMUXERS[facts.format], metadata_errors="replace"
        )
    except Exception as exc:
        raise corrupt_media(f"cannot open {facts.format} file", exc) from exc
    try:
        if not container.streams.video:
            raise AntifakeError(
                ErrorCode.UNSUPPORTED_MEDIA, f"{facts.format} file has no video stream"
            )
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        _cap_decoder_pixels(stream, limits.max_video_pixels)
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width * height > limits.max_video_pixels:
            raise AntifakeError(
                ErrorCode.TOO_LARGE,
                f"video frame {width}x{height} exceeds {limits.max_video_pixels} pixels "
                "(limit max_video_pixels)",
            )
        duration_s = None
        duration_is_video = False
        if stream.duration is not None and stream.time_base is not None:
            duration_s = _as_float(stream.duration * stream.time_base)
            duration_is_video = duration_s is not None
        if duration_s is None and container.duration is not None:
            duration_s = _as_float(container.duration / av.time_base)
            duration_is_video = len(container.streams) == 1
        if duration_s is not None and duration_s > limits.max_duration_s:
            raise AntifakeError(
                ErrorCode.TOO_LARGE,
                f"video declares {duration_s:.0f} s, over {limits.max_duration_s:.0f} s "
                "(limit max_duration_s)",
            )
        frame_count = int(stream.frames or 0) or None
        if frame_count is not None and frame_count > limits.max_frames:
            raise AntifakeError(
                ErrorCode.TOO_LARGE,
                f"video declares {frame_count} frames, over {limits.max_frames} "
                "(limit max_frames)",
            )
        fps = _as_float(stream.average_rate) or _as_float(stream.guessed_rate)
        start_time_s = 0.0
        if stream.start_time is not None and stream.time_base is not None:
            start_time_s = float(stream.start_time * stream.time_base)
        try:
            first = next(container.decode(stream), None)
        except Exception as exc:
            raise corrupt_media(f"cannot decode the first {facts.format} frame", exc) from exc
        if first is None:
            raise corrupt_media(f"{facts.format} file has no decodable video frame")
        if first.width * first.height > limits.max_video_pixels:
            raise AntifakeError(
                ErrorCode.TOO_LARGE,
                f"video frame {first.width}x{first.height} exceeds "
                f"{limits.max_video_pixels} pixels (limit max_video_pixels)",
            )
        width, height = width or first.width, height or first.height
        code = orientation.frame_code(first)
        if orientation.swaps_sides(code):
            width, height = height, width
        metadata = container_and_stream_tags(container, stream)
        codec = ctx.name if ctx is not None else None
        sound = probe_audio_stream(container)
    except AntifakeError:
        raise
    except Exception as exc:
        raise corrupt_media(f"cannot read {facts.format} file", exc) from exc
    finally:
        container.close()
    xmp = xmp_from_file(facts.path, facts.size_bytes)
    if xmp:
        metadata["xmp"] = xmp
        fields = parse_xmp_fields(xmp)
        if fields:
            metadata["xmp_fields"] = fields
    info = MediaInfo(
        path=facts.path,
        media_type="video",
        format=facts.format,
        mime=facts.mime,
        size_bytes=facts.size_bytes,
        sha256=facts.sha256,
        width=width,
        height=height,
        frame_count=frame_count,
        fps=fps,
        duration_s=duration_s,
        codec=codec,
        animated=False,
        metadata=metadata,
        sample_rate=(sound["sample_rate"] or None) if sound else None,
        channels=(sound["channels"] or None) if sound else None,
        orientation=code,
    )
    return VideoMedia(info, limits, start_time_s, duration_is_video)

