"""Declared sample counts of MP4/MOV tracks, checked before FFmpeg reads the file.

FFmpeg's MOV demuxer builds an in-memory index entry (about 24 bytes) for every sample a
track declares, while the file is being *opened* - before a single frame is decoded and
before :func:`antifake.media.video.open_video` can look at the frame count. A track whose
``stsz`` box says "20 million samples of 100 bytes each" costs four bytes to write and
about 1.2 GiB of memory to open (found by fuzzing; ``tests/test_bmff_sample_counts.py``).

This module walks the box tree ``moov/trak/mdia/{hdlr, minf/stbl/stsz|stz2}`` with bounded
reads (box headers and a few fields, never a table) and refuses a track that declares
more samples than the limits allow. Sound tracks with a constant sample size are exempt:
FFmpeg indexes those per chunk (the chunk table is in the file, so its size is bounded
by the file's), and uncompressed audio legitimately declares one sample per PCM frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from antifake.config import Limits
from antifake.errors import AntifakeError, ErrorCode

# Container boxes on the way from the file's top level to the sample tables.
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
_MAX_BOXES = 100_000  # boxes visited per file: the walk itself must stay cheap
_MAX_DEPTH = 6
# Non-video tracks (audio packets, subtitles, timecode, metadata) carry at most this many
# samples per second of the longest allowed clip; AAC at 48 kHz is ~47 packets/s.
NON_VIDEO_SAMPLES_PER_S = 200


@dataclass
class TrackSamples:
    """What one ``trak`` declares: handler type and ``stsz``/``stz2`` fields."""

    handler: bytes = b""
    sample_size: int = 0  # 0: one size per sample in a table
    sample_count: int = 0


def _box_header(fh: BinaryIO, offset: int, end: int) -> tuple[bytes, int, int] | None:
    """(type, payload offset, box end) of the box at ``offset``, or None when no box fits."""
    if end - offset < 8:
        return None
    fh.seek(offset)
    header = fh.read(16)
    if len(header) < 8:
        return None
    size = int.from_bytes(header[:4], "big")
    box_type = header[4:8]
    payload = offset + 8
    if size == 1:
        if len(header) < 16:
            return None
        size = int.from_bytes(header[8:16], "big")
        payload = offset + 16
    elif size == 0:
        size = end - offset
    if size < payload - offset or offset + size > end:
        return None  # runs past its parent: FFmpeg stops there too
    return box_type, payload, offset + size


def track_samples(fh: BinaryIO, file_size: int) -> list[TrackSamples]:
    """Every ``trak`` in the file's ``moov`` with its declared sample count."""
    tracks: list[TrackSamples] = []
    visited = 0

    def walk(start: int, end: int, depth: int, track: TrackSamples | None,
             parent: bytes) -> None:
        nonlocal visited
        offset = start
        while offset < end and visited < _MAX_BOXES:
            visited += 1
            found = _box_header(fh, offset, end)
            if found is None:
                return
            box_type, payload, box_end = found
            if box_type == b"trak" and depth < _MAX_DEPTH:
                track = TrackSamples()
                tracks.append(track)
                walk(payload, box_end, depth + 1, track, box_type)
                track = None
            elif box_type in _CONTAINERS and depth < _MAX_DEPTH:
                walk(payload, box_end, depth + 1, track, box_type)
            elif track is not None and box_type == b"hdlr" and parent == b"mdia":
                # The media handler (QuickTime also has a data handler, 'dhlr', in minf).
                fh.seek(payload)
                body = fh.read(12)  # version/flags, pre_defined, handler_type
                if len(body) == 12:
                    track.handler = body[8:12]
            elif track is not None and box_type in (b"stsz", b"stz2"):
                fh.seek(payload)
                body = fh.read(12)  # version/flags, sample_size (or field size), count
                if len(body) == 12:
                    if box_type == b"stsz":
                        track.sample_size = int.from_bytes(body[4:8], "big")
                    track.sample_count = int.from_bytes(body[8:12], "big")
            offset = box_end

    walk(0, file_size, 0, None, b"")
    return tracks


def check_sample_counts(fh: BinaryIO, fmt: str, file_size: int, limits: Limits) -> None:
    """Raise ``too_large`` when a track declares more samples than ``limits`` allow.

    Video tracks: at most ``limits.max_frames`` (each sample is a frame). Other tracks:
    at most ``max(max_frames, NON_VIDEO_SAMPLES_PER_S * max_duration_s)``, except sound
    tracks with a constant sample size (indexed per chunk, see the module docstring).
    """
    other_cap = max(limits.max_frames, int(NON_VIDEO_SAMPLES_PER_S * limits.max_duration_s))
    for track in track_samples(fh, file_size):
        if track.handler == b"vide":
            if track.sample_count > limits.max_frames:
                raise AntifakeError(
                    ErrorCode.TOO_LARGE,
                    f"{fmt} video track declares {track.sample_count} frames, over "
                    f"{limits.max_frames} (limit max_frames)",
                )
            continue
        if track.handler == b"soun" and track.sample_size != 0:
            continue
        if track.sample_count > other_cap:
            kind = track.handler.decode("ascii", "replace") or "unknown"
            raise AntifakeError(
                ErrorCode.TOO_LARGE,
                f"{fmt} {kind!r} track declares {track.sample_count} samples, over "
                f"{other_cap} (limits max_frames / max_duration_s)",
            )
