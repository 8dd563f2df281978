"""``open_media``: the single entry point from a path to a validated :class:`Media`."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from antifake.config import Limits
from antifake.errors import AntifakeError, ErrorCode
from antifake.media.audio import open_audio
from antifake.media.images import open_image
from antifake.media.metadata import bound_metadata
from antifake.media.sniff import check_container_size, sniff_file
from antifake.media.types import Media
from antifake.media.video import FileFacts, open_video

_HASH_CHUNK = 1024 * 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def open_media(path: str | Path, limits: Limits | None = None) -> Media:
    """Open and validate an image, video or audio file.

    Order matters: the cheap checks (existence, size, sniffed format, container size
    fields, MP4/MOV sample counts, declared pixels/duration/frames) run before any full
    decode. Images are then decoded once; videos are probed and their first frame
    decoded. Everything a hostile file can cause is raised as :class:`AntifakeError`
    (``not_found``, ``empty_file``, ``unsupported_media``, ``corrupt_media``,
    ``too_large``).
    """
    limits = limits or Limits()
    p = Path(path)
    try:
        st = os.stat(p)
    except (OSError, ValueError) as exc:
        raise AntifakeError(ErrorCode.NOT_FOUND, f"file not found: {p}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise AntifakeError(ErrorCode.NOT_FOUND, f"not a regular file: {p}")
    size = st.st_size
    if size == 0:
        raise AntifakeError(ErrorCode.EMPTY_FILE, f"file is empty: {p}")
    if size > limits.max_file_bytes:
        raise AntifakeError(
            ErrorCode.TOO_LARGE,
            f"file is {size} bytes, over {limits.max_file_bytes} (limit max_file_bytes)",
        )
    try:
        sniffed = sniff_file(p)
        check_container_size(p, sniffed, size, limits)
        facts = FileFacts(p, sniffed.format, sniffed.mime, size, _sha256(p))
    except PermissionError as exc:
        raise AntifakeError(ErrorCode.NOT_FOUND, f"file not readable: {p}") from exc
    except OSError as exc:
        raise AntifakeError(ErrorCode.CORRUPT_MEDIA, f"cannot read {p}: {exc}") from exc
    media: Media
    if sniffed.media_type == "image":
        media = open_image(facts, limits)
    elif sniffed.media_type == "audio":
        media = open_audio(p, sniffed.format, sniffed.mime, size, facts.sha256, limits)
    else:
        try:
            media = open_video(facts, limits)
        except AntifakeError as exc:
            # An MP4/WebM/MKV with sound only (a voice memo, an .m4a named .mp4) is audio.
            if exc.code != ErrorCode.UNSUPPORTED_MEDIA or "no video stream" not in exc.message:
                raise
            media = open_audio(p, sniffed.format, sniffed.mime.replace("video/", "audio/"),
                               size, facts.sha256, limits)
    media.info.metadata = bound_metadata(media.info.metadata, limits.max_metadata_bytes)
    return media
