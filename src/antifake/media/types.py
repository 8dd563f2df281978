"""Data types of decoded media, shared by every detector."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

MediaType = Literal["image", "video", "audio"]


@dataclass
class MediaInfo:
    """What we know about a file without looking at its pixels' meaning.

    ``format`` is sniffed from the bytes (``jpeg``, ``png``, ``webp``, ``gif``, ``bmp``,
    ``tiff``, ``mp4``, ``mov``, ``webm``, ``mkv``, ``avi``; audio: ``wav``, ``aiff``, ``flac``,
    ``mp3``, ``ogg``, ``aac``, ``m4a``), never from the extension. Audio files have
    ``width == height == 0`` and their ``sample_rate``/``channels`` set.
    ``metadata`` groups what was extracted by origin: ``exif`` (tag name -> value),
    ``xmp`` (raw XMP packet string), ``png_text`` (keyword -> text), ``container_tags``,
    ``stream_tags``, ``iptc`` - each key present only when found.
    """

    path: Path
    media_type: MediaType
    format: str
    mime: str
    size_bytes: int
    sha256: str
    width: int
    height: int
    frame_count: int | None = None  # declared or counted; None when unknown
    fps: float | None = None
    duration_s: float | None = None
    codec: str | None = None
    animated: bool = False  # animated GIF/WebP/PNG are decoded as video
    metadata: dict[str, Any] = field(default_factory=dict)
    sample_rate: int | None = None  # audio files, and a video's sound track
    channels: int | None = None
    # EXIF orientation code (1-8) that frames are turned by for display (a photo's EXIF
    # tag, a video's display matrix; :mod:`antifake.media.orientation`); 1 = as stored.
    # width and height are the displayed ones.
    orientation: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (metadata values are already strings/numbers)."""
        return {
            "format": self.format,
            "mime": self.mime,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "frame_count": self.frame_count,
            "fps": self.fps,
            "duration_s": self.duration_s,
            "codec": self.codec,
            "animated": self.animated,
            "metadata": self.metadata,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "orientation": self.orientation,
        }


@dataclass
class Frame:
    """One decoded frame (a still image is a single frame with index 0)."""

    index: int  # index in the decoded stream, not in the sample
    time_s: float
    rgb: np.ndarray  # HxWx3 uint8, RGB order
    keyframe: bool = True


class Media(Protocol):
    """An opened, validated file. Frames are decoded lazily, as a stream."""

    info: MediaInfo

    @property
    def path(self) -> Path: ...

    def frames(self, sampling: Any = None) -> Iterator[Frame]:
        """Yield sampled frames (a :class:`antifake.config.FrameSampling`, or the default).

        For images this yields exactly one frame. Decoding errors raise
        :class:`antifake.errors.AntifakeError` with ``corrupt_media``; limits raise
        ``too_large``.
        """
        ...
