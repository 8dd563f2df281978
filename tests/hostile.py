"""Hostile-input corpus for antifake, and a sandboxed runner for it.

The corpus (:func:`cases`) covers every supported format (jpeg png webp gif bmp tiff, mp4
mov webm mkv avi, animated gif/webp/png): valid files, truncations, bit flips, declared-size
bombs (PNG IHDR, GIF screen, BMP, TIFF, JPEG SOF, WebP, MP4 mvhd/mdhd/stsz, Matroska, AVI),
hostile metadata (oversized / looping EXIF, deep and XXE XMP, PNG text floods and zlib bombs,
giant JUMBF in JPEG APP11), polyglots, zero-byte files, wrong extensions, odd and non-UTF-8
file names, and special files (FIFO, device symlink, symlink loop).

Every case is analysed with ``Engine().analyze(path)`` (then, when that succeeded, every frame
is decoded again with ``FrameSampling(mode="all")``) inside a worker subprocess that runs with
an ``RLIMIT_AS`` memory cap; the parent enforces a wall-clock timeout per case. A case that
hangs or blows up kills only the worker, which is restarted, and the case is reported as
``timeout`` / ``crash`` instead of taking down the test run.

Run the whole matrix and print a table (used for docs/reliability.md)::

    PYTHONPATH=src:tests python tests/hostile.py [--timeout 6] [--mem-mib 1536] [-k FILTER]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

# Outcomes: "ok" (analysed without error) or an ErrorCode value. Never acceptable:
# "internal_error", "crash" (worker died: segfault, abort, OOM kill), "timeout" (hang),
# "bad_exception" (something other than AntifakeError escaped frame decoding) and
# "unserialisable" (the result could not be written as JSON).
OK = "ok"
BAD_FILE = frozenset({"corrupt_media", "unsupported_media"})
ANY_CLEAN = frozenset({OK, "corrupt_media", "unsupported_media", "too_large"})

# Wall clock per case (analyze + full decode). The slowest case takes ~0.6 s on an idle
# 2-core machine whose CPU has VNNI, but ~11 s on a 2-core AMD EPYC with AVX2 only, where
# one CLIP forward takes ~0.6 s instead of ~0.06 s (2026-12-05: the 40-frame GIF case,
# 8 CLIP frames). The bound leaves headroom for such a machine while still turning a
# real hang into a failure; no case expects a timeout, so it costs nothing when all pass.
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MEM_MIB = 1536  # RLIMIT_AS of the worker: virtual memory, ~700 MiB of it is libraries
# Peak RSS allowed per (non-amplification) case, worker baseline included. Was 768 (2.5x
# the highest measured, 338 MiB); the semantic_clip detector's CLIP encoder (~140 MiB
# resident, plus its inference buffers) raised the highest measured to 722 MiB (polyglot
# GIF cases, 2026-12-02), so 1024: still far below the GiB-scale allocations of a decoder
# that trusts declared sizes.
DEFAULT_MAX_RSS_MIB = 1024

_HERE = Path(__file__).resolve().parent
_SRC = _HERE.parent / "src"


@dataclass(frozen=True)
class Case:
    """One hostile input: how to build it, and which outcomes are correct."""

    name: str
    build: Callable[[Path], Path]  # writes the file(s) into a directory, returns the path
    expect: frozenset[str]
    media_format: str | None = None  # when "ok": the format that must be sniffed
    forbid_text: str | None = None  # must not appear in the JSON result (e.g. XXE leaks)
    # Cost-amplification cases: small files that legitimately take many seconds (a large
    # but allowed pixel count, a long animation). Not in the default pytest run; they have
    # their own wall-clock budget.
    slow_timeout_s: float | None = None
    max_rss_mib: float | None = None  # peak RSS bound for the worker while on this case


# ------------------------------------------------------------------ base media


def _synth() -> Any:
    sys.path.insert(0, str(_HERE))
    import synth

    return synth


_BASE_CACHE: dict[str, bytes] = {}


def base_bytes(kind: str) -> bytes:
    """Bytes of a small valid file of ``kind`` (cached per process)."""
    if kind in _BASE_CACHE:
        return _BASE_CACHE[kind]
    import tempfile

    s = _synth()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        still = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP",
                 "tiff": "TIFF"}
        video = {
            "mp4": ("mp4", "libx264"), "mov": ("mov", "libx264"),
            "webm": ("webm", "libvpx-vp9"), "mkv": ("matroska", "libx264"),
            "avi": ("avi", "mpeg4"),
        }
        if kind in still:
            path = s.write_image(d / f"x.{kind}", fmt=still[kind], width=96, height=64)
        elif kind == "avif":
            from PIL import Image

            path = d / "x.avif"
            Image.fromarray(s.textured_rgb(96, 64)).save(path, format="AVIF", quality=80)
        elif kind == "heif":  # HEVC-coded, as iPhones write (pillow-heif: a dev dependency)
            import pillow_heif
            from PIL import Image

            path = d / "x.heic"
            pillow_heif.from_pillow(Image.fromarray(s.textured_rgb(96, 64))).save(
                path, quality=80)
        elif kind in video:
            container, codec = video[kind]
            path = s.write_video(d / f"x.{kind}", container=container, codec=codec, frames=24)
        elif kind == "webm_320":  # two-byte PixelWidth/PixelHeight elements
            path = s.write_video(d / "w.webm", container="webm", codec="libvpx-vp9", frames=4,
                                 width=320, height=240)
        elif kind in AUDIO_CODECS:
            container, codec = AUDIO_CODECS[kind]
            path = s.write_audio(d / f"a.{kind}", s.voice_like(3.0), container=container,
                                 codec=codec)
        elif kind in ("anim_gif", "anim_webp", "anim_png"):
            fmt = {"anim_gif": "GIF", "anim_webp": "WEBP", "anim_png": "PNG"}[kind]
            path = s.write_animated_image(d / f"a.{kind}", fmt, frames=6)
        else:
            raise KeyError(kind)
        data = path.read_bytes()
    _BASE_CACHE[kind] = data
    return data


def _writer(filename: str, data_fn: Callable[[], bytes]) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = d / filename
        p.write_bytes(data_fn())
        return p

    return build


# ------------------------------------------------------------------ byte surgery


def truncate(data: bytes, fraction: float) -> bytes:
    return data[: max(1, int(len(data) * fraction))]


def flip_bits(data: bytes, seed: int, count: int, skip: int = 0) -> bytes:
    """Flip ``count`` random bits after the first ``skip`` bytes (deterministic)."""
    rng = random.Random(seed)
    buf = bytearray(data)
    for _ in range(count):
        i = rng.randrange(skip, len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def patch(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload)))


def png_insert_before_idat(png: bytes, chunks: bytes) -> bytes:
    i = png.index(b"IDAT") - 4
    return png[:i] + chunks + png[i:]


def png_zlib_bomb(width: int, height: int) -> bytes:
    """A valid greyscale PNG of ``width`` x ``height`` zeros: a few KiB, huge when decoded."""
    raw = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    body = b"".join(raw.compress(row) for _ in range(height)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body)
            + png_chunk(b"IEND", b""))


def png_declaring(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    assert len(payload) + 2 <= 0xFFFF
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_insert_after_soi(jpeg: bytes, segments: bytes) -> bytes:
    return jpeg[:2] + segments + jpeg[2:]


def jpeg_set_sof(jpeg: bytes, width: int, height: int) -> bytes:
    i = jpeg.index(b"\xff\xc0")
    return patch(jpeg, i + 5, struct.pack(">HH", height, width))


def tiff_file(tags: list[tuple[int, int, int, bytes]], pixels: bytes = b"\0" * 64,
              next_ifd_self: bool = False) -> bytes:
    """A little-endian TIFF with one IFD of ``(tag, type, count, value-bytes)`` entries.

    Values of up to 4 bytes are inlined; longer ones are placed after the IFD. The pixel
    data follows; tag 273 (StripOffsets) gets the special value 0xFFFFFFFF replaced by its
    real offset.
    """
    ifd_offset = 8
    n = len(tags)
    ifd_size = 2 + 12 * n + 4
    extra_offset = ifd_offset + ifd_size
    extra = b""
    entries = b""
    value_blobs: list[tuple[int, int, int, bytes]] = []
    for tag, typ, count, value in sorted(tags):
        if len(value) > 4:
            value_blobs.append((tag, typ, count, value))
    pixel_offset = extra_offset + sum(len(v) for *_, v in value_blobs)
    for tag, typ, count, value in sorted(tags):
        if value == b"\xff\xff\xff\xff" and tag == 273:
            value = struct.pack("<I", pixel_offset)
        if len(value) > 4:
            entries += struct.pack("<HHII", tag, typ, count, extra_offset + len(extra))
            extra += value
        else:
            entries += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\0")
    next_ifd = ifd_offset if next_ifd_self else 0
    return (b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", n) + entries
            + struct.pack("<I", next_ifd) + extra + pixels)


def _long(v: int) -> bytes:
    return struct.pack("<I", v)


def _short(v: int) -> bytes:
    return struct.pack("<H", v)


def tiff_gray(width: int, height: int, **kw: Any) -> bytes:
    """An 8-bit greyscale, uncompressed TIFF header declaring ``width`` x ``height``."""
    return tiff_file(
        [
            (256, 4, 1, _long(width)),
            (257, 4, 1, _long(height)),
            (258, 3, 1, _short(8)),
            (259, 3, 1, _short(1)),
            (262, 3, 1, _short(1)),
            (273, 4, 1, b"\xff\xff\xff\xff"),
            (278, 4, 1, _long(height)),
            (279, 4, 1, _long(min(width * height, 0xFFFFFFFF))),
        ],
        **kw,
    )


def exif_tiff(entries: list[tuple[int, int, int, bytes]], sub_pointer_to_self: bool = False,
              next_ifd_self: bool = False) -> bytes:
    """A little-endian EXIF/TIFF structure (no pixels) for a JPEG APP1 segment."""
    tags = list(entries)
    if sub_pointer_to_self:
        tags += [(34665, 4, 1, _long(8)), (34853, 4, 1, _long(8))]  # Exif, GPS IFD -> IFD0
    return tiff_file(tags, pixels=b"", next_ifd_self=next_ifd_self)


def find_box(data: bytes, box: bytes, start: int = 0) -> int:
    """Offset of an ISO-BMFF box's type field (raises ValueError when absent)."""
    return data.index(box, start)


def mp4_set_header_duration(data: bytes, box: bytes, duration: int) -> bytes:
    i = find_box(data, box)
    version = data[i + 4]
    if version == 0:
        return patch(data, i + 4 + 16, struct.pack(">I", duration & 0xFFFFFFFF))
    return patch(data, i + 4 + 24, struct.pack(">Q", duration))


def mp4_set_sample_count(data: bytes, count: int) -> bytes:
    i = find_box(data, b"stsz")
    return patch(data, i + 4 + 8, struct.pack(">I", count))  # version/flags, sample_size


def mp4_set_avc1_size(data: bytes, width: int, height: int) -> bytes:
    i = find_box(data, b"avc1")
    return patch(data, i + 4 + 24, struct.pack(">HH", width, height))


def mkv_set_duration(data: bytes, value: float) -> bytes:
    for size_byte, fmt in ((0x88, ">d"), (0x84, ">f")):
        i = data.find(bytes([0x44, 0x89, size_byte]))
        if i >= 0:
            return patch(data, i + 3, struct.pack(fmt, value))
    raise ValueError("no Matroska Duration element")


def mkv_set_pixel_size(data: bytes, width: int, height: int) -> bytes:
    i = data.index(b"\xb0\x82")  # PixelWidth, 2-byte value
    data = patch(data, i + 2, struct.pack(">H", width))
    j = data.index(b"\xba\x82")  # PixelHeight
    return patch(data, j + 2, struct.pack(">H", height))


def avi_patch(data: bytes, total_frames: int | None = None, width: int | None = None,
              height: int | None = None, length: int | None = None) -> bytes:
    i = data.index(b"avih") + 8
    if total_frames is not None:
        data = patch(data, i + 16, struct.pack("<I", total_frames))
    if width is not None and height is not None:
        data = patch(data, i + 32, struct.pack("<II", width, height))
        j = data.index(b"strf") + 8
        data = patch(data, j + 4, struct.pack("<ii", width, height))
    if length is not None:
        k = data.index(b"strh") + 8
        data = patch(data, k + 32, struct.pack("<I", length))
    return data


def gif_set_screen(data: bytes, width: int, height: int) -> bytes:
    return patch(data, 6, struct.pack("<HH", width, height))


def gif_many_frames(frames: int, delay_cs: int = 1) -> bytes:
    """A hand-built GIF with ``frames`` 1x1 frames (about 30 bytes each)."""
    out = bytearray(b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x80\x00\x00")
    out += b"\x00\x00\x00\xff\xff\xff"  # 2-colour global table
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = (b"\x21\xf9\x04\x00" + struct.pack("<H", delay_cs) + b"\x00\x00"
             + b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00"
             + b"\x02\x02\x44\x01\x00")
    out += frame * frames
    out += b"\x3b"
    return bytes(out)


def gif_frame_outside_screen(left: int, top: int, width: int, height: int) -> bytes:
    """A 48x32-screen animated GIF whose second frame is placed far outside the screen:
    Pillow's seek() grows the canvas to cover it. (The fuzzer's original, an 8 KiB file in
    tests/fuzz_regressions/, made load() allocate ~840 MiB before the size check.)"""
    head = bytearray(b"GIF89a" + struct.pack("<HH", 48, 32) + b"\x80\x00\x00")
    head += b"\x00\x00\x00\xff\xff\xff"
    head += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    first = (b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1)
             + b"\x00\x02\x02\x44\x01\x00")
    second = (b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + b"\x2c"
              + struct.pack("<HHHH", left, top, width, height)
              + b"\x80\xff\x00\x00\x00\xff\x00"  # own 2-colour palette: RGB canvas
              + b"\x02\x02\x44\x01\x00")
    return bytes(head + first + second + b"\x3b")


def bmp_set_size(data: bytes, width: int, height: int) -> bytes:
    return patch(data, 18, struct.pack("<ii", width, height))


def webp_set_vp8_size(data: bytes, width: int, height: int) -> bytes:
    i = data.index(b"VP8 ") + 8 + 6  # chunk header, frame tag (3) + start code (3)
    return patch(data, i, struct.pack("<HH", width & 0x3FFF, height & 0x3FFF))


def apng_set_frames(data: bytes, frames: int) -> bytes:
    i = data.index(b"acTL")
    payload = struct.pack(">II", frames, 0)
    return data[: i - 4] + png_chunk(b"acTL", payload) + data[i + 4 + 8 + 4 :]


# ------------------------------------------------------------------ hostile metadata


def xmp_nested(depth: int) -> bytes:
    body = "<a>" * depth + "x" + "</a>" * depth
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description>'
        f"{body}</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


XXE_XMP = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY leak SYSTEM "file:///etc/passwd">]>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>&leak;</dc:title>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def jpeg_with_xmp(xmp: bytes) -> bytes:
    seg = jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + xmp)
    return jpeg_insert_after_soi(base_bytes("jpeg"), seg)


def png_with_itxt_xmp(xmp: bytes) -> bytes:
    itxt = png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp)
    return png_insert_before_idat(base_bytes("png"), itxt)


def jpeg_with_exif(tiff: bytes) -> bytes:
    return jpeg_insert_after_soi(base_bytes("jpeg"), jpeg_segment(0xE1, b"Exif\0\0" + tiff))


def exif_flood() -> bytes:
    """An EXIF block filling one APP1 segment: 2000 ASCII tags of 16 bytes each."""
    entries = [(0x9000 + i, 2, 16, b"A" * 15 + b"\0") for i in range(2000)]
    return exif_tiff(entries)


def jumbf_app11(total_bytes: int, declared_lbox: int | None = None) -> bytes:
    """JPEG APP11 segments carrying one C2PA-labelled JUMBF superbox of ``total_bytes``."""
    label = b"c2pa\0"
    jumd = struct.pack(">I", 8 + 16 + 1 + len(label)) + b"jumd" + bytes.fromhex(
        "6332706100110010800000aa00389b71") + b"\x03" + label
    filler_len = max(0, total_bytes - 8 - len(jumd) - 8)
    inner = struct.pack(">I", 8 + filler_len) + b"json" + b"{" * filler_len
    lbox = declared_lbox if declared_lbox is not None else 8 + len(jumd) + len(inner)
    box = struct.pack(">I", lbox) + b"jumb" + jumd + inner
    segs = bytearray()
    chunk = 65000
    for seq, start in enumerate(range(0, len(box), chunk), start=1):
        part = box[start : start + chunk]
        payload = b"JP" + struct.pack(">HI", 1, seq)
        if seq > 1:
            payload += box[:8]  # continuation segments repeat LBox/TBox
        segs += jpeg_segment(0xEB, payload + part)
    return bytes(segs)


def png_text_flood(count: int) -> bytes:
    chunks = b"".join(png_chunk(b"tEXt", b"k%d\0" % i + b"v" * 64) for i in range(count))
    return png_insert_before_idat(base_bytes("png"), chunks)


def png_ztxt_bomb(megabytes: int) -> bytes:
    payload = b"Comment\0\0" + zlib.compress(b"A" * (megabytes * 1024 * 1024), 9)
    return png_insert_before_idat(base_bytes("png"), png_chunk(b"zTXt", payload))


# ------------------------------------------------------------------ polyglots


def gif_html_polyglot() -> bytes:
    """``GIF89a/*`` ... ``*/=1;alert(1)``: a valid GIF that is also valid JavaScript, with
    an HTML payload after the trailer (the classic GIFAR-style upload bypass)."""
    width = 0x2A2F  # the bytes "/*"
    gif = bytearray(b"GIF89a" + struct.pack("<HH", width, 10) + b"\x80\x00\x00")
    gif += b"\x00\x00\x00\xff\xff\xff"
    gif += b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"
    gif += b"\x3b"
    return bytes(gif) + b"*/=1;alert(1);//<html><script>alert(document.cookie)</script></html>"


def with_zip_appended(data: bytes) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.html", "<script>alert(1)</script>")
        zf.writestr("../../evil.sh", "rm -rf /")
    return data + buf.getvalue()


# ------------------------------------------------------------------ special files


def _fifo(d: Path) -> Path:
    p = d / "pipe.jpg"
    os.mkfifo(p)
    return p


def _symlink(target: str, name: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = d / name
        os.symlink(target, p)
        return p

    return build


def _directory(d: Path) -> Path:
    p = d / "dir.png"
    p.mkdir()
    return p


def _symlink_loop(d: Path) -> Path:
    a, b = d / "loop_a.png", d / "loop_b.png"
    os.symlink(b, a)
    os.symlink(a, b)
    return a


def _bytes_name(name: bytes, kind: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        raw = os.path.join(os.fsencode(d), name)
        with open(raw, "wb") as fh:
            fh.write(base_bytes(kind))
        return Path(os.fsdecode(raw))

    return build


def _nested_name(parts: list[str], kind: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        # ".." components climb out of x/y/, never out of the case directory d
        (d / "x" / "y").mkdir(parents=True, exist_ok=True)
        p = d.joinpath("x", "y", *parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(base_bytes(kind))
        return p

    return build


# ------------------------------------------------------------------ the matrix

STILL_KINDS = ("jpeg", "png", "webp", "gif", "bmp", "tiff", "heif", "avif")
VIDEO_KINDS = ("mp4", "mov", "webm", "mkv", "avi")
ANIM_KINDS = ("anim_gif", "anim_webp", "anim_png")
AUDIO_KINDS = ("wav", "flac", "mp3", "ogg", "m4a")
AUDIO_CODECS = {"wav": ("wav", "pcm_s16le"), "flac": ("flac", "flac"),
                "mp3": ("mp3", "libmp3lame"), "ogg": ("ogg", "libopus"),
                "m4a": ("ipod", "aac")}
_EXT = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "bmp": "bmp", "tiff": "tif",
        "heif": "heic", "avif": "avif",
        "mp4": "mp4", "mov": "mov", "webm": "webm", "mkv": "mkv", "avi": "avi",
        "anim_gif": "gif", "anim_webp": "webp", "anim_png": "png"}
_FORMAT = {k: k for k in STILL_KINDS + VIDEO_KINDS} | {
    "anim_gif": "gif", "anim_webp": "webp", "anim_png": "png"}

FLIP_SEEDS = 6  # random bit-flip variants per format


def wav_bytes(channels: int, rate: int, declared_data: int, actual_data: int) -> bytes:
    """A PCM WAV header declaring ``channels``/``rate``/``declared_data`` bytes, followed by
    ``actual_data`` bytes of a low tone."""
    block = max(1, channels) * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate % 2**32, (rate * block) % 2**32, block, 16)
    tone = (struct.pack("<h", 3000) + struct.pack("<h", -3000)) * (actual_data // 4 + 1)
    return (b"RIFF" + struct.pack("<I", min(2**32 - 1, 36 + declared_data)) + b"WAVE"
            + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
            + struct.pack("<I", declared_data) + tone[:actual_data])


def _truncated_base(kind: str, fraction: float) -> bytes:
    return truncate(base_bytes(kind), fraction)


def _head_of_base(kind: str, count: int) -> bytes:
    return base_bytes(kind)[:count]


def _flipped_base(kind: str, seed: int) -> bytes:
    """About one flipped bit per 500 bytes, never in the 4 magic bytes (other cases)."""
    data = base_bytes(kind)
    return flip_bits(data, seed, max(4, len(data) // 500), skip=4)


def cases() -> list[Case]:
    """The full hostile matrix (deterministic: same names and bytes on every run)."""
    out: list[Case] = []

    def add(name: str, filename: str, data_fn: Callable[[], bytes], expect: frozenset[str],
            fmt: str | None = None, forbid: str | None = None,
            slow_timeout_s: float | None = None) -> None:
        out.append(Case(name, _writer(filename, data_fn), expect, fmt, forbid, slow_timeout_s))

    for kind in STILL_KINDS + ANIM_KINDS + VIDEO_KINDS:
        ext, fmt = _EXT[kind], _FORMAT[kind]

        b = partial(base_bytes, kind)
        add(f"valid/{kind}", f"valid.{ext}", b, frozenset({OK}), fmt)
        for frac in (0.05, 0.5, 0.9, 0.99):
            add(f"truncated/{kind}@{frac}", f"cut.{ext}",
                partial(_truncated_base, kind, frac), BAD_FILE)
        add(f"truncated/{kind}@16B", f"cut16.{ext}", partial(_head_of_base, kind, 16),
            BAD_FILE)
        for seed in range(FLIP_SEEDS):
            add(f"bitflip/{kind}#{seed}", f"flip.{ext}",
                partial(_flipped_base, kind, seed),
                ANY_CLEAN)
        add(f"wrong_ext/{kind}.txt", "file.txt", b, frozenset({OK}), fmt)
        add(f"no_ext/{kind}", "file", b, frozenset({OK}), fmt)

    # -- audio (issue 12): a cut or damaged audio file may still play, as in any player,
    # so truncations and bit flips may be analysed; what is never acceptable is a crash,
    # a hang or an internal error.
    for kind in AUDIO_KINDS:
        b = partial(base_bytes, kind)
        add(f"valid/{kind}", f"valid.{kind}", b, frozenset({OK}), kind)
        for frac in (0.05, 0.5, 0.9):
            add(f"truncated/{kind}@{frac}", f"cut.{kind}", partial(_truncated_base, kind, frac),
                ANY_CLEAN)
        add(f"truncated/{kind}@16B", f"cut16.{kind}", partial(_head_of_base, kind, 16),
            BAD_FILE)
        for seed in range(3):
            add(f"bitflip/{kind}#{seed}", f"flip.{kind}", partial(_flipped_base, kind, seed),
                ANY_CLEAN)
        add(f"wrong_ext/{kind}.jpg", "sound.jpg", b, frozenset({OK}), kind)
    add("audio/wav_200_channels", "many.wav", partial(wav_bytes, 200, 16000, 6400, 6400),
        BAD_FILE)
    add("audio/wav_rate_0", "rate0.wav", partial(wav_bytes, 1, 0, 6400, 6400), BAD_FILE)
    add("audio/wav_rate_4ghz", "fast.wav", partial(wav_bytes, 1, 4_000_000_000, 6400, 6400),
        BAD_FILE)
    add("audio/wav_declares_4gb", "liar.wav", partial(wav_bytes, 1, 16000, 0xFFFF_FFF0, 32000),
        ANY_CLEAN)
    add("audio/wav_header_only", "empty.wav", partial(wav_bytes, 1, 16000, 0, 0), BAD_FILE)
    add("audio/mp3_frame_sync_flood", "sync.mp3", lambda: b"\xff\xfb\x90\x64" * 250_000,
        ANY_CLEAN)

    # -- wrong extensions across families
    add("wrong_ext/png_as_mp4", "movie.mp4", lambda: base_bytes("png"), frozenset({OK}), "png")
    add("wrong_ext/mp4_as_jpg", "photo.jpg", lambda: base_bytes("mp4"), frozenset({OK}), "mp4")
    add("wrong_ext/webm_as_gif", "anim.gif", lambda: base_bytes("webm"), frozenset({OK}), "webm")
    add("wrong_ext/jpeg_as_exe", "setup.exe", lambda: base_bytes("jpeg"), frozenset({OK}), "jpeg")

    # -- zero-byte files
    for ext in ("jpg", "png", "mp4", "webm", "gif", "bin", ""):
        add(f"empty/.{ext or 'noext'}", f"empty.{ext}" if ext else "empty", lambda: b"",
            frozenset({"empty_file"}))

    # -- not media
    too_large = frozenset({"too_large"})
    not_media = {
        "html.jpg": b"<!doctype html><html><script>alert(1)</script></html>",
        "svg.png": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "elf.gif": b"\x7fELF\x02\x01\x01" + b"\0" * 120,
        "zip.mp4": with_zip_appended(b""),
        "pdf.webp": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF",
        "heic.mp4": b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64,
        "riff_wave.avi": b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 64,
        "ebml_other.mkv": b"\x1a\x45\xdf\xa3\x88\x42\x82\x85hello" + b"\0" * 32,
        "random.bin": random.Random(7).randbytes(8192),
    }
    for fname, content in not_media.items():
        add(f"not_media/{fname}", fname, partial(bytes, content), BAD_FILE)

    # -- decompression bombs: declared sizes
    add("bomb/png_ihdr_100000x100000", "bomb.png", lambda: png_declaring(100_000, 100_000),
        too_large)
    add("bomb/png_ihdr_2^31-1x1", "bomb.png", lambda: png_declaring(2**31 - 1, 1), BAD_FILE |
        too_large)
    add("bomb/png_ihdr_9000x9000", "bomb.png", lambda: png_declaring(9000, 9000), too_large)
    add("bomb/png_zlib_1024x1024_zeros", "zbomb.png", lambda: png_zlib_bomb(1024, 1024),
        frozenset({OK}), "png")
    add("bomb/png_zlib_12000x12000_zeros", "zbomb.png", lambda: png_zlib_bomb(12000, 12000),
        too_large)
    add("bomb/gif_screen_65535x65535", "bomb.gif",
        lambda: gif_set_screen(base_bytes("gif"), 65535, 65535), too_large)
    add("bomb/anim_gif_screen_65535x65535", "bomb.gif",
        lambda: gif_set_screen(base_bytes("anim_gif"), 65535, 65535), too_large)
    add("bomb/bmp_50000x50000", "bomb.bmp", lambda: bmp_set_size(base_bytes("bmp"), 50_000,
                                                                  50_000), too_large)
    add("bomb/bmp_1x-2^31", "bomb.bmp", lambda: bmp_set_size(base_bytes("bmp"), 1, -(2**31)),
        BAD_FILE | too_large)
    add("bomb/tiff_100000x100000", "bomb.tif", lambda: tiff_gray(100_000, 100_000), too_large)
    add("bomb/tiff_ifd_loop", "loop.tif", lambda: tiff_gray(8, 8, next_ifd_self=True),
        ANY_CLEAN)
    add("bomb/jpeg_sof_65535x65535", "bomb.jpg",
        lambda: jpeg_set_sof(base_bytes("jpeg"), 65535, 65535), too_large)
    add("bomb/jpeg_sof_9000x9000", "bomb.jpg",
        lambda: jpeg_set_sof(base_bytes("jpeg"), 9000, 9000), too_large)
    # The scan data ends long before 8000x8000 pixels; libjpeg fills the rest with grey
    # and Pillow does not report it: a 2 KiB file becomes a 64 Mpx image (allowed size).
    add("bomb/jpeg_sof_2000x2000_short_scan", "bomb.jpg",
        lambda: jpeg_set_sof(base_bytes("jpeg"), 2000, 2000), ANY_CLEAN)
    add("amplification/jpeg_sof_8000x8000_short_scan", "bomb.jpg",
        lambda: jpeg_set_sof(base_bytes("jpeg"), 8000, 8000), ANY_CLEAN, slow_timeout_s=60)
    add("amplification/png_zlib_4096x4096_zeros", "zbomb.png", lambda: png_zlib_bomb(4096, 4096),
        frozenset({OK}), "png", slow_timeout_s=60)
    # 80 Mpx, just under max_image_pixels: needs ~3.2 GiB RSS and ~20 s when unconstrained;
    # under the sandbox's RLIMIT_AS it must fail cleanly (MemoryError -> too_large).
    add("amplification/png_zlib_8944x8944_zeros", "zbomb.png", lambda: png_zlib_bomb(8944, 8944),
        frozenset({OK, "too_large"}), "png", slow_timeout_s=120)
    add("amplification/gif_2000_frames", "many.gif", lambda: gif_many_frames(2000),
        frozenset({OK}), "gif", slow_timeout_s=60)
    add("bomb/webp_vp8_16383x16383", "bomb.webp",
        lambda: webp_set_vp8_size(base_bytes("webp"), 16383, 16383), BAD_FILE | too_large)
    add("bomb/apng_actl_2^31-1_frames", "bomb.png",
        lambda: apng_set_frames(base_bytes("anim_png"), 2**31 - 1), BAD_FILE | too_large)
    out.append(Case("bomb/gif_frame_outside_screen_1000x60000", _writer(
        "outside.gif", partial(gif_frame_outside_screen, 0, 30000, 1000, 30000)),
        # 700: the size check runs before any allocation, so the peak is the worker's
        # baseline: ~480 MiB alone (CLIP encoder of semantic_clip resident), above 560 once
        # in a full CI run after the earlier cases; the bug this guards allocated ~840 MiB
        # on top of the baseline.
        too_large, max_rss_mib=700))
    add("bomb/gif_20_frames_x_655s", "long.gif", lambda: gif_many_frames(20, 65535), too_large)
    add("bomb/gif_40_frames_1x1", "many.gif", lambda: gif_many_frames(40), frozenset({OK}),
        "gif")
    add("bomb/mp4_mvhd_duration_2^32-1", "bomb.mp4",
        lambda: mp4_set_header_duration(base_bytes("mp4"), b"mvhd", 2**32 - 1), ANY_CLEAN)
    add("bomb/mp4_mdhd_duration_2^32-1", "bomb.mp4",
        lambda: mp4_set_header_duration(base_bytes("mp4"), b"mdhd", 2**32 - 1), ANY_CLEAN)
    add("bomb/mp4_mvhd+mdhd_duration_2^32-1", "bomb.mp4",
        lambda: mp4_set_header_duration(
            mp4_set_header_duration(base_bytes("mp4"), b"mvhd", 2**32 - 1), b"mdhd",
            2**32 - 1), ANY_CLEAN)  # FFmpeg derives the duration from the sample table
    add("bomb/mp4_stsz_count_2^32-1", "bomb.mp4",
        lambda: mp4_set_sample_count(base_bytes("mp4"), 2**32 - 1), BAD_FILE | too_large)
    add("bomb/mp4_avc1_65535x65535", "bomb.mp4",
        lambda: mp4_set_avc1_size(base_bytes("mp4"), 65535, 65535), ANY_CLEAN)
    add("bomb/mov_mvhd+mdhd_duration_2^32-1", "bomb.mov",
        lambda: mp4_set_header_duration(
            mp4_set_header_duration(base_bytes("mov"), b"mvhd", 2**32 - 1), b"mdhd",
            2**32 - 1), ANY_CLEAN)
    add("bomb/webm_duration_1e15", "bomb.webm",
        lambda: mkv_set_duration(base_bytes("webm"), 1e15), BAD_FILE | too_large)
    add("bomb/mkv_duration_1e15", "bomb.mkv",
        lambda: mkv_set_duration(base_bytes("mkv"), 1e15), BAD_FILE | too_large)
    add("bomb/webm_pixels_65535x65535", "bomb.webm",
        lambda: mkv_set_pixel_size(base_bytes("webm_320"), 65535, 65535), ANY_CLEAN)
    add("bomb/avi_frames_2^31", "bomb.avi",
        lambda: avi_patch(base_bytes("avi"), total_frames=2**31, length=2**31), ANY_CLEAN)
    add("bomb/avi_60000x60000", "bomb.avi",
        lambda: avi_patch(base_bytes("avi"), width=60_000, height=60_000), ANY_CLEAN)

    # -- hostile metadata
    add("meta/exif_flood_64KiB", "exif.jpg", lambda: jpeg_with_exif(exif_flood()),
        frozenset({OK}), "jpeg")
    add("meta/exif_subifd_loop", "exifloop.jpg",
        lambda: jpeg_with_exif(exif_tiff([(0x010F, 2, 4, b"cam\0")], sub_pointer_to_self=True,
                                          next_ifd_self=True)), frozenset({OK}), "jpeg")
    add("meta/exif_offsets_out_of_range", "exifbad.jpg",
        lambda: jpeg_with_exif(exif_tiff([(0x010F, 2, 0x7FFFFFFF, _long(0x7FFFFFF0)),
                                          (34665, 4, 1, _long(0xFFFFFF00))])),
        frozenset({OK}), "jpeg")
    add("meta/exif_many_app1", "exif_many.jpg",
        lambda: jpeg_insert_after_soi(base_bytes("jpeg"), jpeg_segment(
            0xE1, b"Exif\0\0" + exif_flood()) * 200), frozenset({OK}), "jpeg")
    add("meta/xmp_nested_9000_jpeg", "deep.jpg", lambda: jpeg_with_xmp(xmp_nested(9000)),
        frozenset({OK}), "jpeg")
    add("meta/xmp_nested_200000_png", "deep.png", lambda: png_with_itxt_xmp(xmp_nested(200_000)),
        frozenset({OK}), "png")
    add("meta/xmp_xxe_file_passwd", "xxe.jpg", lambda: jpeg_with_xmp(XXE_XMP), frozenset({OK}),
        "jpeg", forbid="root:")
    add("meta/xmp_huge_8MiB_png", "bigxmp.png",
        lambda: png_with_itxt_xmp(b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b"A" * (8 << 20)
                                  + b"</x:xmpmeta>"), frozenset({OK}), "png")
    add("meta/png_text_flood_20000", "text.png", lambda: png_text_flood(20_000),
        frozenset({OK}), "png")
    add("meta/png_ztxt_bomb_64MiB", "ztxt.png", lambda: png_ztxt_bomb(64),
        frozenset({OK, "corrupt_media"}), "png")
    add("meta/png_chunk_length_2^31", "chunk.png",
        lambda: png_insert_before_idat(base_bytes("png"),
                                       struct.pack(">I", 2**31 - 1) + b"tEXt" + b"x" * 16),
        BAD_FILE)
    add("meta/jpeg_comment_64KiB_x16", "com.jpg",
        lambda: jpeg_insert_after_soi(base_bytes("jpeg"),
                                      jpeg_segment(0xFE, b"<script>" * 8000) * 16),
        frozenset({OK}), "jpeg")
    add("meta/jumbf_app11_20MiB", "jumbf.jpg",
        lambda: jpeg_insert_after_soi(base_bytes("jpeg"), jumbf_app11(20 << 20)),
        frozenset({OK}), "jpeg")
    add("meta/jumbf_app11_lbox_4GiB", "jumbf4g.jpg",
        lambda: jpeg_insert_after_soi(base_bytes("jpeg"),
                                      jumbf_app11(4096, declared_lbox=0xFFFFFFF0)),
        frozenset({OK}), "jpeg")
    add("meta/mp4_tags_many", "tags.mp4", _mp4_with_many_tags, frozenset({OK}), "mp4")

    # -- polyglots
    add("polyglot/gif_html_js", "polyglot.gif", gif_html_polyglot, frozenset({OK}), "gif")
    add("polyglot/gif_html_js_as_html", "index.html", gif_html_polyglot, frozenset({OK}), "gif")
    add("polyglot/jpeg_plus_zip", "photo.jpg", lambda: with_zip_appended(base_bytes("jpeg")),
        frozenset({OK}), "jpeg")
    add("polyglot/png_plus_html", "img.png",
        lambda: base_bytes("png") + b"<html><script>alert(1)</script></html>",
        frozenset({OK}), "png")
    add("polyglot/mp4_plus_zip", "clip.mp4", lambda: with_zip_appended(base_bytes("mp4")),
        ANY_CLEAN)
    add("polyglot/html_then_gif", "x.gif", lambda: b"<html>" + base_bytes("gif"), BAD_FILE)

    # -- file names and special files
    odd_names = {
        "dotdot": ["..", "..", "etc", "passwd.png"],
        "dash_rf": ["-rf .png"],
        "shell_meta": ["$(touch pwned);`id`|x&.png"],
        "newline": ["line1\nline2.png"],
        "rtl_override": ["photo\u202egnp.exe"],
        "unicode": ["фото 写真 🖼.png"],
        "long_255": ["x" * 251 + ".png"],
        "backslashes": ["..\\..\\windows\\x.png"],
    }
    for label, parts in odd_names.items():
        out.append(Case(f"name/{label}", _nested_name(parts, "png"), frozenset({OK}), "png"))
    for label, raw in {"latin1": b"caf\xe9.png", "invalid_utf8": b"\xff\xfe\x80.jpg",
                       "lone_surrogate_bytes": b"\xed\xa0\x80.png"}.items():
        kind = "jpeg" if raw.endswith(b".jpg") else "png"
        out.append(Case(f"name/bytes_{label}", _bytes_name(raw, kind), frozenset({OK}),
                        _FORMAT[kind]))
    out.append(Case("special/fifo", _fifo, frozenset({"not_found"})))
    out.append(Case("special/symlink_dev_zero", _symlink("/dev/zero", "zero.png"),
                    frozenset({"not_found"})))
    out.append(Case("special/symlink_dev_urandom", _symlink("/dev/urandom", "rand.mp4"),
                    frozenset({"not_found"})))
    out.append(Case("special/symlink_loop", _symlink_loop, frozenset({"not_found"})))
    out.append(Case("special/directory", _directory, frozenset({"not_found"})))
    out.append(Case("special/missing", lambda d: d / "missing.png", frozenset({"not_found"})))
    return out


def _mp4_with_many_tags() -> bytes:
    import tempfile

    s = _synth()
    with tempfile.TemporaryDirectory() as tmp:
        md = {f"key{i}": "<script>" + "v" * 200 for i in range(300)}
        md["comment"] = "\u202e<img src=x onerror=alert(1)>" * 50
        p = s.write_video(Path(tmp) / "t.mp4", frames=6, metadata=md)
        return p.read_bytes()


# ------------------------------------------------------------------ worker (subprocess side)


def _peak_rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _self_test(command: str) -> None:
    """``!sleep`` hangs, ``!abort`` dies, ``!alloc`` tries to allocate 8 GiB."""
    if command == "!sleep":
        time.sleep(3600)
    elif command == "!abort":
        os.abort()
    elif command == "!alloc":
        try:
            block = bytearray(8 << 30)
            outcome = f"allocated {len(block)} bytes"
        except MemoryError:
            outcome = "memory_error"
        sys.stdout.write(json.dumps({"outcome": outcome}) + "\n")
        sys.stdout.flush()


def worker_main() -> None:
    """Read hex-encoded paths from stdin, analyse each, write one JSON line per file."""
    import logging

    logging.disable(logging.CRITICAL)  # the engine logs internal errors; we report them
    from antifake.config import FrameSampling
    from antifake.engine import Engine
    from antifake.errors import AntifakeError
    from antifake.media import open_media

    engine = Engine()
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if line.startswith("!"):  # self-test commands for the sandbox itself
            _self_test(line.strip())
            continue
        path = os.fsdecode(bytes.fromhex(line.strip()))
        _reset_peak_rss()
        t0 = time.perf_counter()
        result = engine.analyze(path)
        report: dict[str, Any] = {
            "outcome": result.error["code"] if result.error else OK,
            "message": (result.error or {}).get("message", ""),
            "format": (result.media or {}).get("format"),
            "media_type": result.media_type,
        }
        try:
            text = json.dumps(result.to_dict())  # what the CLI / API emit
            json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8", "surrogateescape")
            report["json_bytes"] = len(text)
            report["json_excerpt_has"] = {}
        except Exception as exc:  # noqa: BLE001 - any failure here is the finding
            report["outcome"] = "unserialisable"
            report["message"] = repr(exc)
            text = ""
        report["text"] = text[:200_000]
        if report["outcome"] == OK:
            # Decode every frame too: the detectors may not touch them all.
            try:
                media = open_media(path)
                for _ in media.frames(FrameSampling(mode="all", max_frames=None)):
                    pass
            except AntifakeError as exc:
                report["outcome"] = f"frames:{exc.code.value}"
                report["message"] = exc.message
            except Exception as exc:  # noqa: BLE001
                report["outcome"] = "bad_exception"
                report["message"] = repr(exc)
        report["elapsed_s"] = time.perf_counter() - t0
        report["peak_rss_mib"] = _peak_rss_kib() / 1024
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()


# ------------------------------------------------------------------ runner (parent side)


@dataclass
class Outcome:
    """What happened to one case."""

    case: Case
    outcome: str
    message: str
    elapsed_s: float
    peak_rss_mib: float
    format: str | None
    text: str

    @property
    def passed(self) -> bool:
        # "frames:<code>": analyze() succeeded (its sampled frames decoded) but decoding
        # every frame hit damage later in the stream; judged like the code itself.
        outcome = self.outcome.removeprefix("frames:")
        if outcome not in self.case.expect:
            return False
        if outcome == OK and self.case.media_format and self.format != self.case.media_format:
            return False
        rss_bound = self.case.max_rss_mib
        if rss_bound is None and self.case.slow_timeout_s is None:
            rss_bound = DEFAULT_MAX_RSS_MIB
        if rss_bound is not None and self.peak_rss_mib > rss_bound:
            return False
        return not (self.case.forbid_text and self.case.forbid_text in self.text)


class SandboxedWorker:
    """A worker subprocess under ``RLIMIT_AS``; restarted after a crash or timeout."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S,
                 mem_mib: int = DEFAULT_MEM_MIB) -> None:
        self.timeout_s = timeout_s
        self.mem_bytes = mem_mib * 1024 * 1024
        self.proc: subprocess.Popen[str] | None = None

    def _limit(self) -> None:
        resource.setrlimit(resource.RLIMIT_AS, (self.mem_bytes, self.mem_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(_SRC), str(_HERE), env.get("PYTHONPATH", "")])
        # Fewer threads and malloc arenas: less virtual memory reserved under RLIMIT_AS.
        env.update(MALLOC_ARENA_MAX="2", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import hostile; hostile.worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=env, preexec_fn=self._limit, start_new_session=True,
        )
        ready = self._read_line(60.0)
        if ready is None or not json.loads(ready).get("ready"):
            self.stop()
            raise RuntimeError("hostile worker did not start")

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
            self.proc = None

    def _read_line(self, timeout_s: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return line or None

    def run_path(self, path: Path | str) -> tuple[str, dict[str, Any]]:
        """("ok"/code/"timeout"/"crash", report) for one file (a ``!command`` string is
        passed through for the sandbox self-test)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        t0 = time.perf_counter()
        is_command = isinstance(path, str) and path.startswith("!")
        line_out = str(path) if is_command else os.fsencode(path).hex()
        self.proc.stdin.write(line_out + "\n")
        self.proc.stdin.flush()
        line = self._read_line(self.timeout_s)
        elapsed = time.perf_counter() - t0
        if line is None:
            try:  # EOF on stdout: the worker is exiting, give it a moment to be reaped
                rc: int | None = self.proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                rc = None
            crashed = rc is not None
            self.stop()
            if crashed:
                return "crash", {"message": f"worker died (exit {rc})", "elapsed_s": elapsed}
            return "timeout", {"message": f"no answer within {self.timeout_s} s",
                               "elapsed_s": elapsed}
        report = json.loads(line)
        return report["outcome"], report

    def run(self, case: Case, workdir: Path) -> Outcome:
        """Build ``case`` in a fresh directory and analyse it; a timeout is retried once in
        a fresh worker (the CPUs are shared, a hang times out twice)."""
        d = workdir / f"case{abs(hash(case.name)) % 10**12}"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        path = case.build(d)
        saved = self.timeout_s
        self.timeout_s = case.slow_timeout_s or saved
        try:
            outcome, report = self.run_path(path)
            if outcome == "timeout":
                outcome, report = self.run_path(path)
        finally:
            self.timeout_s = saved
        shutil.rmtree(d, ignore_errors=True)
        return Outcome(
            case=case,
            outcome=outcome,
            message=str(report.get("message", ""))[:300],
            elapsed_s=float(report.get("elapsed_s", 0.0)),
            peak_rss_mib=float(report.get("peak_rss_mib", -1.0)),
            format=report.get("format"),
            text=str(report.get("text", "")),
        )


def main(argv: list[str] | None = None) -> int:
    """Run the matrix and print one line per case plus a summary per category."""
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    ap.add_argument("--mem-mib", type=int, default=DEFAULT_MEM_MIB)
    ap.add_argument("-k", default="", help="only cases whose name contains this")
    ap.add_argument("-q", action="store_true", help="print failures and the summary only")
    ap.add_argument("--slow", action="store_true",
                    help="include the cost-amplification cases (tens of seconds each)")
    args = ap.parse_args(argv)
    selected = [c for c in cases()
                if args.k in c.name and (args.slow or c.slow_timeout_s is None)]
    worker = SandboxedWorker(args.timeout, args.mem_mib)
    failures = 0
    per_cat: dict[str, list[Outcome]] = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for case in selected:
                res = worker.run(case, Path(tmp))
                per_cat.setdefault(case.name.split("/")[0], []).append(res)
                failures += not res.passed
                if not args.q or not res.passed:
                    mark = "PASS" if res.passed else "FAIL"
                    print(f"{mark} {case.name:45s} {res.outcome:18s} {res.elapsed_s:6.2f}s "
                          f"{res.peak_rss_mib:7.1f}MiB {res.message[:90]!r}")
        finally:
            worker.stop()
    print(f"\n{'category':12s} {'cases':>5s} {'passed':>6s} {'max s':>6s} "
          f"{'max peak RSS MiB':>17s}")
    for cat, results in per_cat.items():
        print(f"{cat:12s} {len(results):5d} {sum(r.passed for r in results):6d} "
              f"{max(r.elapsed_s for r in results):6.2f} "
              f"{max(r.peak_rss_mib for r in results):17.1f}")
    total = sum(len(v) for v in per_cat.values())
    print(f"total {total} cases, {total - failures} passed, {failures} failed, "
          f"{time.perf_counter() - t_all:.1f} s wall (timeout {args.timeout} s, "
          f"RLIMIT_AS {args.mem_mib} MiB)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(_SRC))
    raise SystemExit(main())
