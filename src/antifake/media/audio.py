"""Audio decoding with PyAV, as a stream of mono float32 chunks at one analysis rate.

Audio files (WAV, FLAC, MP3, AAC/M4A, Ogg Vorbis/Opus, audio-only WebM/MKV/MP4) open as
:class:`AudioMedia`; a video's sound track is read through :func:`iter_audio` too, so audio
detectors see the same samples in both cases.

Every file is attacker-controlled, so decoding is bounded whatever the header declares:
the declared duration is checked before decoding (``max_duration_s``), the number of
channels and the sample rate are checked per decoded frame, and :func:`iter_audio` stops
after ``max_seconds`` of *decoded* audio and after a bounded number of decoded frames
(a stream of zero-length frames cannot spin forever). Memory is flat in the clip's
length: samples are yielded chunk by chunk and never accumulated here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from antifake.config import Limits
from antifake.errors import AntifakeError, ErrorCode, corrupt_media
from antifake.media.metadata import container_and_stream_tags
from antifake.media.types import Frame, MediaInfo

# Every audio detector works on mono audio at this rate (speech carries little above
# 8 kHz, and real recordings in the wild are often band-limited to it).
ANALYSIS_SAMPLE_RATE = 16_000

# FFmpeg demuxer per sniffed format (forcing it stops FFmpeg's own probing from picking some
# other demuxer for a hostile file).
AUDIO_DEMUXERS = {
    "wav": "wav", "aiff": "aiff", "flac": "flac", "mp3": "mp3", "ogg": "ogg", "aac": "aac",
    "m4a": "mov",
    "mp4": "mov", "mov": "mov", "webm": "matroska", "mkv": "matroska", "avi": "avi",
}
# Decoded frames per second of audio no real codec exceeds (AAC: ~47 at 48 kHz, Opus 50,
# MP3 ~38, PCM in FFmpeg ~10-50); a hostile stream of empty frames hits this cap.
_MAX_FRAMES_PER_SECOND = 2_000


def _check_stream_shape(rate: int, channels: int, limits: Limits, fmt: str) -> None:
    if rate <= 0 or rate < limits.min_audio_sample_rate or rate > limits.max_audio_sample_rate:
        raise AntifakeError(
            ErrorCode.UNSUPPORTED_MEDIA if rate > 0 else ErrorCode.CORRUPT_MEDIA,
            f"{fmt} audio sample rate {rate} Hz is outside {limits.min_audio_sample_rate}.."
            f"{limits.max_audio_sample_rate} (limits min_audio_sample_rate, "
            "max_audio_sample_rate)")
    if channels <= 0 or channels > limits.max_audio_channels:
        raise AntifakeError(
            ErrorCode.UNSUPPORTED_MEDIA if channels > 0 else ErrorCode.CORRUPT_MEDIA,
            f"{fmt} audio has {channels} channels, outside 1..{limits.max_audio_channels} "
            "(limit max_audio_channels)")


def iter_audio(path: Path, fmt: str, limits: Limits, *, max_seconds: float | None = None,
               rate: int = ANALYSIS_SAMPLE_RATE, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
    """Yield the first audio stream of ``path`` as mono float32 chunks at ``rate`` Hz.

    Chunks hold about ``chunk_s`` seconds (the last may be shorter). Decoding stops after
    ``max_seconds`` of audio (default: ``limits.max_duration_s``); a file with more audio
    than ``limits.max_duration_s`` raises ``too_large`` when that is reached. Undecodable
    data raises ``corrupt_media``.
    """
    cap_s = limits.max_duration_s if max_seconds is None else min(max_seconds,
                                                                   limits.max_duration_s)
    cap_samples = int(cap_s * rate)
    chunk = max(1, int(chunk_s * rate))
    try:
        container = av.open(str(path), format=AUDIO_DEMUXERS.get(fmt), metadata_errors="replace")
    except Exception as exc:
        raise corrupt_media(f"cannot open {fmt} file", exc) from exc
    try:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        buf: list[np.ndarray] = []
        buffered = produced = frames = 0
        max_frames = int(_MAX_FRAMES_PER_SECOND * (cap_s + 10))
        try:
            for frame in container.decode(stream):
                frames += 1
                if frames > max_frames:
                    raise corrupt_media(f"{fmt} audio has more than {max_frames} frames for "
                                   f"{cap_s:.0f} s of sound")
                _check_stream_shape(int(frame.sample_rate or 0),
                                    len(frame.layout.channels), limits, fmt)
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    buf.append(samples)
                    buffered += samples.size
                while buffered >= chunk:
                    joined = np.concatenate(buf)
                    take = min(chunk, cap_samples - produced)
                    yield joined[:take]
                    produced += take
                    if produced >= cap_samples:
                        if max_seconds is None or max_seconds > limits.max_duration_s:
                            raise AntifakeError(
                                ErrorCode.TOO_LARGE,
                                f"{fmt} audio is longer than {limits.max_duration_s:.0f} s "
                                "(limit max_duration_s)")
                        return
                    rest = joined[chunk:]
                    buf, buffered = ([rest], rest.size) if rest.size else ([], 0)
            for out in resampler.resample(None):  # flush the resampler's delay line
                buf.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        except (av.error.FFmpegError, ValueError) as exc:
            if produced == 0 and not buf:
                raise corrupt_media(f"cannot decode {fmt} audio", exc) from exc
            # A damaged tail (a cut download): keep what decoded, as players do.
        if buf:
            tail = np.concatenate(buf)[: max(0, cap_samples - produced)]
            if tail.size:
                yield tail
    finally:
        container.close()


def read_audio(path: Path, fmt: str, limits: Limits, *, max_seconds: float | None = None,
               rate: int = ANALYSIS_SAMPLE_RATE) -> np.ndarray:
    """The first ``max_seconds`` of audio as one mono float32 array (training, tests)."""
    parts = list(iter_audio(path, fmt, limits, max_seconds=max_seconds, rate=rate))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def probe_audio_stream(container: Any) -> dict[str, Any] | None:
    """Facts about a container's first audio stream (codec, rate, channels, duration),
    or None when it has none."""
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    duration_s = None
    if stream.duration is not None and stream.time_base is not None:
        duration_s = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration_s = float(container.duration / av.time_base)
    return {"codec": ctx.name if ctx is not None else None,
            "sample_rate": int(ctx.sample_rate or 0) if ctx is not None else 0,
            "channels": int(ctx.channels or 0) if ctx is not None else 0,
            "duration_s": duration_s}


class AudioMedia:
    """An opened, validated audio file. Audio is decoded lazily, as a stream."""

    def __init__(self, info: MediaInfo, limits: Limits) -> None:
        self.info = info
        self._limits = limits

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def has_audio(self) -> bool:
        return True

    def frames(self, sampling: Any = None) -> Iterator[Frame]:
        """Audio has no pictures: image and video detectors see no frame."""
        return iter(())

    def audio_chunks(self, max_seconds: float | None = None,
                     rate: int = ANALYSIS_SAMPLE_RATE) -> Iterator[np.ndarray]:
        """Mono float32 chunks of about one second at ``rate`` (see :func:`iter_audio`)."""
        return iter_audio(self.info.path, self.info.format, self._limits,
                          max_seconds=max_seconds, rate=rate)


def open_audio(path: Path, fmt: str, mime: str, size_bytes: int, sha256: str,
               limits: Limits) -> AudioMedia:
    """Probe an audio file: its audio stream, declared duration, shape, first samples."""
    try:
        container = av.open(str(path), format=AUDIO_DEMUXERS.get(fmt), metadata_errors="replace")
    except Exception as exc:
        raise corrupt_media(f"cannot open {fmt} file", exc) from exc
    try:
        facts = probe_audio_stream(container)
        if facts is None:
            raise AntifakeError(ErrorCode.UNSUPPORTED_MEDIA, f"{fmt} file has no audio stream")
        declared = facts["duration_s"]
        if declared is not None and declared > limits.max_duration_s:
            raise AntifakeError(
                ErrorCode.TOO_LARGE,
                f"audio declares {declared:.0f} s, over {limits.max_duration_s:.0f} s "
                "(limit max_duration_s)")
        # 0 = not declared: the decoded frames are checked instead.
        _check_stream_shape(facts["sample_rate"] or limits.min_audio_sample_rate,
                            facts["channels"] or 1, limits, fmt)
        metadata = container_and_stream_tags(container, container.streams.audio[0])
    except AntifakeError:
        raise
    except Exception as exc:
        raise corrupt_media(f"cannot read {fmt} file", exc) from exc
    finally:
        container.close()
    # The first second must decode: garbage with a plausible header fails here, at open.
    first = next(iter_audio(path, fmt, limits, max_seconds=1.0), None)
    if first is None or first.size == 0:
        raise corrupt_media(f"{fmt} file has no decodable audio")
    info = MediaInfo(
        path=path, media_type="audio", format=fmt, mime=mime, size_bytes=size_bytes,
        sha256=sha256, width=0, height=0, duration_s=declared, codec=facts["codec"],
        metadata=metadata, sample_rate=facts["sample_rate"] or None,
        channels=facts["channels"] or None,
    )
    return AudioMedia(info, limits)
