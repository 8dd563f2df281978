"""antifake.media on hostile input: every bad file gives a stable error code, fast, with no
traceback or warning escaping (a warning would be turned into an error here)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from antifake.config import FrameSampling
from antifake.errors import AntifakeError
from antifake.media import open_media
from synth import (
    flipped_copy,
    scrambled_copy,
    textured_rgb,
    truncated_copy,
    write_animated_gif,
    write_image,
    write_video,
)

pytestmark = pytest.mark.filterwarnings("error")

BAD_FILE_CODES = {"corrupt_media", "unsupported_media"}


def _fail_code(path: Path, decode_all: bool = True) -> str:
    """Open ``path`` (and decode every frame); return the AntifakeError code, fast."""
    started = time.perf_counter()
    try:
        media = open_media(path)
        if decode_all:
            for _ in media.frames(FrameSampling(mode="all", max_frames=None)):
                pass
    except AntifakeError as exc:
        assert exc.message  # a human-readable explanation, not an empty string
        assert "Traceback" not in exc.message
        assert time.perf_counter() - started < 5.0
        return exc.code.value
    raise AssertionError(f"{path.name} was accepted")


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("good")
    return {
        "jpeg": write_image(d / "a.jpg", width=160, height=120),
        "png": write_image(d / "a.png", width=160, height=120),
        "gif": write_image(d / "a.gif", width=160, height=120),
        "anim_gif": write_animated_gif(d / "anim.gif", frames=8),
        "mp4": write_video(d / "v.mp4", frames=30),
        "webm": write_video(d / "v.webm", container="webm", codec="libvpx-vp9", frames=30),
        "mkv": write_video(d / "v.mkv", container="matroska", frames=30),
        "avi": write_video(d / "v.avi", container="avi", codec="mpeg4", frames=30),
        "mov": write_video(d / "v.mov", container="mov", frames=30),
    }


def test_missing_path_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.png", tmp_path):
        with pytest.raises(AntifakeError) as exc:
            open_media(path)
        assert exc.value.code.value == "not_found"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    assert _fail_code(path) == "empty_file"


@pytest.mark.parametrize(
    "name,content",
    [
        ("random.jpg", os.urandom(4096)),
        ("notes.png", b"hello, this is plain text\n" * 20),
        ("doc.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"),
        ("page.mp4", b"<!DOCTYPE html><html><head><title>x</title></head></html>\n"),
        ("one_byte.gif", b"G"),
        ("riff.avi", b"RIFF\x24\x00\x00\x00CDXAfmt " + b"\0" * 32),  # WAVE is audio now
    ],
)
def test_not_media(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert _fail_code(path) == "unsupported_media"


@pytest.mark.parametrize("kind", ["jpeg", "png", "gif", "anim_gif", "mp4", "webm", "mkv",
                                  "avi", "mov"])
def test_truncated_at_half(good: dict[str, Path], tmp_path: Path, kind: str) -> None:
    path = truncated_copy(good[kind], tmp_path / f"cut_{good[kind].name}", 0.5)
    assert _fail_code(path) == "corrupt_media"


@pytest.mark.parametrize("kind", ["jpeg", "png", "gif", "mp4", "webm", "mkv", "avi", "mov"])
def test_bit_flipped_header(good: dict[str, Path], tmp_path: Path, kind: str) -> None:
    # Right after the magic bytes: structure fields (IHDR, box sizes, EBML header, ...).
    path = flipped_copy(good[kind], tmp_path / f"flip_{good[kind].name}", start=8, count=16)
    assert _fail_code(path) in BAD_FILE_CODES


@pytest.mark.parametrize("kind", ["jpeg", "png", "gif", "anim_gif", "mp4", "webm", "mkv",
                                  "avi", "mov"])
def test_flipped_magic_is_unsupported_or_corrupt(good: dict[str, Path], tmp_path: Path,
                                                 kind: str) -> None:
    path = flipped_copy(good[kind], tmp_path / f"magic_{good[kind].name}", start=0, count=4)
    assert _fail_code(path) in BAD_FILE_CODES


@pytest.mark.parametrize("kind", ["webm", "mkv"])
def test_damage_mid_stream_is_corrupt(good: dict[str, Path], tmp_path: Path,
                                      kind: str) -> None:
    """FFmpeg's Matroska demuxer stops quietly at garbage; the stream then ends long before
    its declared duration, which must be reported, not passed off as a short clip."""
    path = scrambled_copy(good[kind], tmp_path / f"mid_{good[kind].name}", 0.4, 0.8)
    assert _fail_code(path) == "corrupt_media"


def test_decoder_error_during_frames_is_corrupt(good: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception from PyAV while streaming becomes corrupt_media, not a traceback."""
    import av.container

    media = open_media(good["mp4"])

    def failing_decode(self: object, *args: object, **kwargs: object) -> object:
        yield from ()
        raise av.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(av.container.InputContainer, "decode", failing_decode)
    with pytest.raises(AntifakeError) as exc:
        list(media.frames(FrameSampling(mode="all")))
    assert exc.value.code.value == "corrupt_media"


def test_hostile_metadata_does_not_crash(tmp_path: Path) -> None:
    """Billion-laughs XMP, binary and oversized EXIF values: parsed safely or skipped."""
    bomb_xmp = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><v>&b;</v></x:xmpmeta>'
    )
    exif = Image.Exif()
    exif[0x0131] = "S" * 30_000  # Software, absurdly long (JPEG allows < 64 KiB)
    exif[0x010E] = bytes(range(256)) * 4  # ImageDescription, binary junk
    path = tmp_path / "hostile_meta.jpg"
    Image.fromarray(textured_rgb()).save(path, exif=exif, xmp=bomb_xmp.encode())
    md = open_media(path).info.metadata
    assert md["xmp"].startswith("<?xml")
    assert "xmp_fields" not in md  # defusedxml refused the entities
    assert len(md["exif"]["Software"]) < 5000
    assert "ImageDescription" in md["exif"]


@pytest.mark.parametrize("fraction", [0.1, 0.9])
def test_other_truncation_points(good: dict[str, Path], tmp_path: Path,
                                 fraction: float) -> None:
    checks: list[tuple[str, Callable[[str], bool]]] = [
        ("jpeg", lambda c: c == "corrupt_media"),
        ("png", lambda c: c == "corrupt_media"),
        ("mp4", lambda c: c == "corrupt_media"),
        ("webm", lambda c: c == "corrupt_media"),
    ]
    for kind, ok in checks:
        path = truncated_copy(good[kind], tmp_path / f"cut{fraction}_{good[kind].name}", fraction)
        code = _fail_code(path)
        assert ok(code), (kind, fraction, code)


def test_tiff_whose_pages_loop_is_refused(tmp_path: Path) -> None:
    """Issue 11 item 14: two TIFF pages pointing at each other are junk, not a video."""
    import struct

    from PIL import Image

    from antifake.errors import AntifakeError, ErrorCode
    from antifake.media import open_media

    path = tmp_path / "loop.tif"
    pages = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    data = bytearray(path.read_bytes())
    order = "<" if data[:2] == b"II" else ">"
    first = struct.unpack(order + "I", data[4:8])[0]
    # Walk to the last page's "next IFD" field and point it back at the first page.
    offset = first
    while True:
        count = struct.unpack(order + "H", data[offset:offset + 2])[0]
        field = offset + 2 + 12 * count
        nxt = struct.unpack(order + "I", data[field:field + 4])[0]
        if nxt == 0:
            data[field:field + 4] = struct.pack(order + "I", first)
            break
        offset = nxt
    path.write_bytes(bytes(data))
    with pytest.raises(AntifakeError) as err:
        open_media(path)
    assert err.value.code == ErrorCode.CORRUPT_MEDIA and "loop" in err.value.message
    # The same file without the loop is a normal two-page TIFF.
    pages[0].save(tmp_path / "ok.tif", save_all=True, append_images=pages[1:])
    assert open_media(tmp_path / "ok.tif").info.frame_count == 2


def test_jpeg_with_thousands_of_scans_is_refused_before_decoding(tmp_path: Path) -> None:
    """Issue 11 item 5: a 1 MB progressive JPEG of 15,000 scans took 123 s to decode."""
    import io

    from antifake.errors import ErrorCode
    from antifake.media import open_media
    from antifake.media.images import jpeg_scan_count
    from synth import textured_rgb

    buf = io.BytesIO()
    Image.fromarray(textured_rgb(64, 48)).save(buf, format="JPEG", progressive=True)
    good = tmp_path / "progressive.jpg"
    good.write_bytes(buf.getvalue())
    assert 1 < jpeg_scan_count(good) <= 20
    assert open_media(good).info.width == 64  # a normal progressive JPEG still opens
    data = buf.getvalue()
    # 400 extra (empty) scans before EOI: decoders re-run their progressive pass per scan.
    scan = data[data.index(b"\xff\xda"):data.index(b"\xff\xda") + 2 + int.from_bytes(
        data[data.index(b"\xff\xda") + 2:data.index(b"\xff\xda") + 4], "big")]
    bomb = tmp_path / "scans.jpg"
    bomb.write_bytes(data[:-2] + scan * 400 + b"\xff\xd9")
    t0 = time.perf_counter()
    with pytest.raises(AntifakeError) as err:
        open_media(bomb)
    assert err.value.code == ErrorCode.TOO_LARGE and "max_jpeg_scans" in err.value.message
    assert time.perf_counter() - t0 < 1.0


def test_animation_with_too_many_frames_is_refused(tmp_path: Path) -> None:
    from antifake.config import Limits
    from antifake.errors import ErrorCode
    from antifake.media import open_media
    from synth import write_animated_gif

    gif = write_animated_gif(tmp_path / "a.gif", frames=12)
    assert open_media(gif).info.frame_count == 12
    with pytest.raises(AntifakeError) as err:
        open_media(gif, Limits(max_animation_frames=10))
    assert err.value.code == ErrorCode.TOO_LARGE and "max_animation_frames" in err.value.message
