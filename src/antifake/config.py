"""Limits and analysis options, shared by the CLI, the API and the workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from antifake.errors import AntifakeError, ErrorCode

SamplingMode = Literal["all", "fps", "keyframes"]


@dataclass(frozen=True)
class Limits:
    """Resource limits applied before and during decoding.

    They exist because the files we inspect are attacker-controlled: a 50-byte PNG can
    declare 100k x 100k pixels, a tiny MP4 can declare hours of frames.
    """

    max_file_bytes: int = 2 * 1024**3  # 2 GiB
    max_image_pixels: int = 80_000_000  # per still image or frame (about 9k x 9k)
    max_video_pixels: int = 16_000_000  # per video frame (4K is 8.3M)
    max_duration_s: float = 3 * 3600.0
    max_frames: int = 500_000  # frames decoded from one file, whatever the sampling
    # An animated GIF/WebP/PNG is validated frame by frame when opened: a 2.3 MB GIF of
    # 100,000 frames took 29 s (issue 11 item 5). Videos are bounded by max_frames.
    max_animation_frames: int = 10_000
    # Scans of one JPEG: each progressive scan re-decodes the picture, so a 1 MB file of
    # 15,000 scans took 123 s; real progressive JPEGs have about 10.
    max_jpeg_scans: int = 256
    # Audio: real files have 1-8 channels at 8-192 kHz; more is a hostile header.
    max_audio_channels: int = 32
    max_audio_sample_rate: int = 384_000
    # Below telephone rates no speech is left to judge, and a header declaring a few Hz
    # turns each stored sample into seconds of resampled "audio" (a 10 KB WAV at 1 Hz
    # decoded to 2.8 hours of noise that the speech model scored).
    min_audio_sample_rate: int = 4_000
    # Frames detectors look at per file whatever the sampling asks (None: as sampled).
    # The service sets it (max_frames_per_request): `sampling=all` on an hour of video
    # would otherwise run into the job timeout; with a known duration the allowed frames
    # are spread over the whole clip.
    max_frames_analysed: int | None = None
    max_metadata_bytes: int = 4 * 1024**2  # EXIF/XMP/text chunks kept per file
    timeout_s: float = 600.0  # wall-clock budget for one file


# No video needs more samples per second than this; "all" takes every frame.
MAX_SAMPLING_FPS = 240.0


@dataclass(frozen=True)
class FrameSampling:
    """Which video frames detectors look at.

    ``mode``: ``all`` every decoded frame, ``fps`` about ``fps`` frames per second,
    ``keyframes`` only key (intra) frames. ``max_frames`` caps the count whatever the
    mode; with a known duration the frames are then spread over the whole clip instead of
    taken from its start. ``fps`` samples more than 5 s apart (a long clip) are taken at
    the last keyframe at or before each wanted time when one lies after the previous
    wanted time (see :class:`antifake.media.video.FrameSelector`); ``all``, ``keyframes``
    and denser ``fps`` sampling pick frames by their exact times.
    """

    mode: SamplingMode = "fps"
    fps: float = 2.0
    max_frames: int | None = 64

    def __post_init__(self) -> None:
        if self.mode not in ("all", "fps", "keyframes"):
            raise AntifakeError(ErrorCode.INVALID_REQUEST, f"unknown sampling mode {self.mode!r}")
        if self.mode == "fps" and not (self.fps > 0):
            raise AntifakeError(ErrorCode.INVALID_REQUEST, "sampling fps must be > 0")
        if self.mode == "fps" and not (self.fps <= MAX_SAMPLING_FPS):
            # fps=1e9 planned a billion sample times for a 4 KB clip (12.8 s, 2.4 GiB).
            raise AntifakeError(
                ErrorCode.INVALID_REQUEST,
                f"sampling fps must be <= {MAX_SAMPLING_FPS:g}; use 'all' for every frame")
        if self.max_frames is not None and self.max_frames < 1:
            raise AntifakeError(ErrorCode.INVALID_REQUEST, "max_frames must be >= 1")

    @classmethod
    def parse(cls, spec: str) -> FrameSampling:
        """Parse a CLI/API spec: ``all``, ``keyframes``, ``fps=2``, optionally ``,max=64``.

        >>> FrameSampling.parse("fps=4,max=10")
        FrameSampling(mode='fps', fps=4.0, max_frames=10)
        """
        mode: str = "fps"
        fps = 2.0
        max_frames: int | None = None
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            key, _, value = part.partition("=")
            try:
                if key in ("all", "keyframes") and not value:
                    mode = key
                elif key == "fps":
                    mode, fps = "fps", float(value)
                elif key == "max":
                    max_frames = int(value)
                else:
                    raise ValueError(part)
            except ValueError as exc:
                raise AntifakeError(
                    ErrorCode.INVALID_REQUEST,
                    f"bad sampling spec {spec!r}: expected all | keyframes | fps=N, "
                    "optionally followed by ,max=K",
                ) from exc
        return cls(mode=mode, fps=fps, max_frames=max_frames)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AnalysisOptions:
    """Per-request options."""

    detectors: tuple[str, ...] | None = None  # None: the registry's defaults
    sampling: FrameSampling = field(default_factory=FrameSampling)
    limits: Limits = field(default_factory=Limits)
    want_heatmaps: bool = True
