"""Recognise a media format from its first bytes (never from the file name).

Also checks the container's own size fields against the real file size, so a file cut in
the middle (an interrupted download) is reported as ``corrupt_media`` at open time even
when the demuxer would happily decode the part that is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from antifake.config import Limits
from antifake.errors import AntifakeError, ErrorCode
from antifake.media.bmff import check_sample_counts
from antifake.media.types import MediaType

HEAD_BYTES = 4096

IMAGE_FORMATS = frozenset({"jpeg", "png", "webp", "gif", "bmp", "tiff", "heif", "avif"})
VIDEO_FORMATS = frozenset({"mp4", "mov", "webm", "mkv", "avi"})
AUDIO_FORMATS = frozenset({"wav", "aiff", "flac", "mp3", "ogg", "aac", "m4a"})

MIME_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "heif": "image/heif",
    "avif": "image/avif",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "wav": "audio/wav",
    "aiff": "audio/aiff",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = 0x4282
_MKV_SEGMENT_ID = 0x18538067
# ISO-BMFF brands of HEIF pictures (HEIC: HEVC-coded stills, iPhone photos since iOS 11;
# AVIF: AV1-coded), and of other still or raw formats that are not read.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})  # the codec is in the compatible list
_NON_VIDEO_BRANDS = frozenset({b"jp2 ", b"jpx ", b"jpm ", b"crx "})
# Top-level atoms of old QuickTime files written without an ftyp box.
_QT_LEADING_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"pnot"})
# ISO-BMFF brands of audio-only files (iTunes audio/audiobook, Flash audio, 3GPP audio).
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_BMP_DIB_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


@dataclass(frozen=True)
class Sniffed:
    """The container format recognised from the bytes, and its broad media type."""

    format: str
    media_type: MediaType  # still images may turn out animated once opened

    @property
    def mime(self) -> str:
        return MIME_TYPES[self.format]


def _unsupported(what: str) -> AntifakeError:
    return AntifakeError(ErrorCode.UNSUPPORTED_MEDIA, f"unsupported media: {what}")


def _read_vint(buf: bytes, pos: int, *, is_id: bool) -> tuple[int, int]:
    """Read an EBML variable-length integer at ``pos``: (value, new position).

    IDs keep their length-marker bits; sizes drop them. Raises ValueError on bad input.
    """
    if pos >= len(buf):
        raise ValueError("EBML: unexpected end of header")
    first = buf[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        length += 1
        mask >>= 1
    if length > 8 or pos + length > len(buf):
        raise ValueError("EBML: bad variable-length integer")
    value = first if is_id else first & (mask - 1)
    for b in buf[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, pos + length


def _ebml_doctype(head: bytes) -> tuple[str, int]:
    """DocType of an EBML header and the offset just after the header."""
    _, pos = _read_vint(head, 0, is_id=True)
    size, pos = _read_vint(head, pos, is_id=False)
    end = pos + size
    if end > len(head):
        raise ValueError("EBML header larger than expected")
    while pos < end:
        elem_id, pos = _read_vint(head, pos, is_id=True)
        elem_size, pos = _read_vint(head, pos, is_id=False)
        if elem_id == _EBML_DOCTYPE_ID:
            return head[pos : pos + elem_size].rstrip(b"\0").decode("ascii", "replace"), end
        pos += elem_size
    raise ValueError("EBML header has no DocType")


def _heif_picture_format(head: bytes) -> str | None:
    """``heif`` / ``avif`` when the ``ftyp`` box at the start of ``head`` names a HEIF
    picture brand (major brand, or a generic ``mif1``/``msf1`` major brand with the codec's
    brand among the compatible ones), else None."""
    major = head[8:12]
    if major in _AVIF_BRANDS:
        return "avif"
    if major in _HEIF_BRANDS:
        return "heif"
    if major not in _GENERIC_HEIF_BRANDS:
        return None
    box_end = min(int.from_bytes(head[:4], "big"), len(head))
    compatible = {head[pos:pos + 4] for pos in range(16, box_end - 3, 4)}
    if compatible & _AVIF_BRANDS:
        return "avif"
    return "heif"  # libheif names the codec it meets when it cannot decode it


def sniff_bytes(head: bytes) -> Sniffed:
    """Recognise the format from the first bytes of a file (at least 32 are needed).

    Raises :class:`AntifakeError` ``unsupported_media`` for anything else.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("jpeg", "image")
    if head.startswith(_PNG_SIGNATURE):
        return Sniffed("png", "image")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("gif", "image")
    if head[:4] == b"RIFF" and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WEBP":
            return Sniffed("webp", "image")
        if kind == b"AVI ":
            return Sniffed("avi", "video")
        if kind == b"WAVE":
            return Sniffed("wav", "audio")
        raise _unsupported(f"RIFF container of type {kind!r}")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("tiff", "image")
    if (
        head[:2] == b"BM"
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little") in _BMP_DIB_HEADER_SIZES
    ):
        return Sniffed("bmp", "image")
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return Sniffed("mov", "video")
        if brand in _AUDIO_BRANDS:
            return Sniffed("m4a", "audio")
        picture = _heif_picture_format(head)
        if picture:
            return Sniffed(picture, "image")
        if brand in _NON_VIDEO_BRANDS:
            raise _unsupported(f"ISO media brand {brand.decode('latin-1')!r} (not a video)")
        return Sniffed("mp4", "video")
    if len(head) >= 8 and head[4:8] in _QT_LEADING_ATOMS:
        return Sniffed("mov", "video")
    if head.startswith(_EBML_MAGIC):
        try:
            doctype, _ = _ebml_doctype(head)
        except ValueError as exc:
            raise AntifakeError(ErrorCode.CORRUPT_MEDIA, f"corrupt Matroska header: {exc}") from exc
        if doctype == "webm":
            return Sniffed("webm", "video")
        if doctype == "matroska":
            return Sniffed("mkv", "video")
        raise _unsupported(f"EBML document type {doctype!r}")
    if head[:4] == b"FORM" and len(head) >= 12:
        kind = head[8:12]
        if kind in (b"AIFF", b"AIFC"):  # Apple's PCM container (AIFC: compressed or float)
            return Sniffed("aiff", "audio")
        raise _unsupported(f"IFF container of type {kind!r}")
    if head[:4] == b"fLaC":
        return Sniffed("flac", "audio")
    if head[:4] == b"OggS":
        return Sniffed("ogg", "audio")
    if head[:3] == b"ID3":
        return Sniffed("mp3", "audio")  # ID3v2 tag; what follows is checked by the decoder
    if len(head) >= 4 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 3
        if layer == 0 and head[1] & 0xF6 == 0xF0:
            return Sniffed("aac", "audio")  # ADTS header (sync, MPEG id, layer 0)
        if layer != 0 and (head[1] >> 3) & 3 != 1 and head[2] >> 4 != 0xF:
            return Sniffed("mp3", "audio")  # MPEG audio frame: valid version and bitrate
    raise _unsupported("not a recognised image, video or audio format")


def sniff_file(path: Path) -> Sniffed:
    """Read the head of ``path`` and recognise its format."""
    with open(path, "rb") as fh:
        return sniff_bytes(fh.read(HEAD_BYTES))


def _truncated(fmt: str, declared_end: int, file_size: int) -> AntifakeError:
    return AntifakeError(
        ErrorCode.CORRUPT_MEDIA,
        f"truncated {fmt} file: the container declares {declared_end} bytes "
        f"but the file has {file_size}",
    )


def _check_bmff(fh: BinaryIO, fmt: str, file_size: int) -> None:
    """Walk the top-level ISO-BMFF boxes: none may run past the end of the file."""
    offset = 0
    for _ in range(1_000_000):  # fragmented MP4s have many boxes, but not unbounded
        if file_size - offset < 8:
            return
        fh.seek(offset)
        header = fh.read(16)
        size = int.from_bytes(header[:4], "big")
        box_type = header[4:8]
        if not all(32 <= b < 127 for b in box_type):
            return  # trailing junk after the last box: demuxers ignore it, so do we
        if size == 0:
            return  # box extends to the end of the file
        if size == 1:
            if len(header) < 16:
                raise _truncated(fmt, offset + 16, file_size)
            size = int.from_bytes(header[8:16], "big")
            if size < 16:
                raise AntifakeError(ErrorCode.CORRUPT_MEDIA, f"corrupt {fmt} box size")
        elif size < 8:
            raise AntifakeError(ErrorCode.CORRUPT_MEDIA, f"corrupt {fmt} box size {size}")
        if offset + size > file_size:
            raise _truncated(fmt, offset + size, file_size)
        offset += size


def check_container_size(path: Path, sniffed: Sniffed, file_size: int,
                         limits: Limits | None = None) -> None:
    """Raise ``corrupt_media`` when the container says the file should be longer.

    Covers RIFF (WebP, AVI), IFF (AIFF), ISO-BMFF (MP4, MOV, HEIF, AVIF) and Matroska (WebM,
    MKV). Formats without such a size field (JPEG, PNG, GIF...) are checked by their decoder
    instead.
    With ``limits``, MP4/MOV tracks declaring more samples than they allow raise
    ``too_large`` too (:func:`antifake.media.bmff.check_sample_counts`: FFmpeg indexes
    every declared sample while opening the file).
    """
    fmt = sniffed.format
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
        if fmt in ("webp", "avi", "aiff"):
            # RIFF (little-endian) and IFF (big-endian) chunk sizes; chunks are padded to
            # even sizes, so tolerate a missing final pad byte.
            declared = 8 + int.from_bytes(head[4:8], "big" if fmt == "aiff" else "little")
            if declared > file_size + 1:
                raise _truncated(fmt, declared, file_size)
        elif fmt in ("mp4", "mov", "heif", "avif"):
            _check_bmff(fh, fmt, file_size)
            if limits is not None and fmt in ("mp4", "mov"):
                check_sample_counts(fh, fmt, file_size, limits)
        elif fmt in ("webm", "mkv"):
            try:
                _, pos = _ebml_doctype(head)
                seg_id, pos = _read_vint(head, pos, is_id=True)
                size_start = pos
                seg_size, pos = _read_vint(head, pos, is_id=False)
            except ValueError as exc:
                raise AntifakeError(
                    ErrorCode.CORRUPT_MEDIA, f"corrupt {fmt} header: {exc}"
                ) from exc
            if seg_id != _MKV_SEGMENT_ID:
                raise AntifakeError(ErrorCode.CORRUPT_MEDIA, f"corrupt {fmt}: no Segment element")
            width = pos - size_start
            unknown_size = (1 << (7 * width)) - 1  # all value bits set: live/streamed file
            if seg_size != unknown_size and pos + seg_size > file_size:
                raise _truncated(fmt, pos + seg_size, file_size)
