"""antifake.media: sniffing, decoding, sampling, metadata and limits on synthesised files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from antifake.config import FrameSampling, Limits
from antifake.errors import AntifakeError
from antifake.media import open_media
from antifake.media.sniff import sniff_bytes
from synth import (
    SAMPLE_XMP,
    textured_rgb,
    write_animated_gif,
    write_animated_image,
    write_image,
    write_png_declaring,
    write_video,
    write_video_gop,
)

IMAGE_CASES = [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("gif", "GIF"),
               ("bmp", "BMP"), ("tiff", "TIFF")]
VIDEO_CASES = [("mp4", "mp4", "libx264"), ("mov", "mov", "libx264"),
               ("webm", "webm", "libvpx-vp9"), ("mkv", "matroska", "libx264"),
               ("avi", "avi", "mpeg4")]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def gop_video(media_dir: Path) -> Path:
    """60 frames at 12 fps (5 s), keyframe every 10 frames."""
    return write_video_gop(media_dir / "gop.mp4", frames=60, gop=10, fps=12)


def _code(exc: pytest.ExceptionInfo[AntifakeError]) -> str:
    return exc.value.code.value


# ------------------------------------------------------------------ sniffing / decoding


@pytest.mark.parametrize("fmt,pil_fmt", IMAGE_CASES)
def test_still_images_sniffed_from_bytes_not_extension(tmp_path: Path, fmt: str,
                                                       pil_fmt: str) -> None:
    path = write_image(tmp_path / "picture.mp4", fmt=pil_fmt)  # deliberately wrong suffix
    media = open_media(path)
    info = media.info
    assert (info.format, info.media_type, info.animated) == (fmt, "image", False)
    assert info.mime.startswith("image/")
    assert (info.width, info.height) == (96, 64)
    frames = list(media.frames(FrameSampling(mode="all")))
    assert len(frames) == 1
    assert frames[0].index == 0 and frames[0].time_s == 0.0
    assert frames[0].rgb.shape == (64, 96, 3) and frames[0].rgb.dtype == np.uint8
    if fmt in ("png", "bmp", "tiff"):  # lossless: pixels must round-trip exactly
        assert np.array_equal(frames[0].rgb, textured_rgb(96, 64))


def test_png_named_jpg_and_mp4_named_png(tmp_path: Path) -> None:
    png = write_image(tmp_path / "x.jpg", fmt="PNG")
    assert open_media(png).info.format == "png"
    mp4 = write_video(tmp_path / "clip.png")
    info = open_media(mp4).info
    assert (info.format, info.media_type, info.mime) == ("mp4", "video", "video/mp4")


@pytest.mark.parametrize("fmt,container,codec", VIDEO_CASES)
def test_videos_sniffed_and_decoded(tmp_path: Path, fmt: str, container: str,
                                    codec: str) -> None:
    path = write_video(tmp_path / "clip.bin", container=container, codec=codec, frames=12,
                       fps=12)
    media = open_media(path)
    info = media.info
    assert (info.format, info.media_type) == (fmt, "video")
    assert (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(12.0)
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    assert info.codec
    assert len(info.sha256) == 64 and info.size_bytes == path.stat().st_size
    frames = list(media.frames(FrameSampling(mode="all", max_frames=None)))
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].rgb.shape == (48, 64, 3) and frames[0].rgb.dtype == np.uint8
    assert frames[0].keyframe


@pytest.mark.parametrize("pil_fmt,fmt", [("GIF", "gif"), ("WEBP", "webp"), ("PNG", "png")])
def test_animated_images_are_video(tmp_path: Path, pil_fmt: str, fmt: str) -> None:
    path = write_animated_image(tmp_path / "anim.jpg", pil_fmt, frames=5, duration_ms=100)
    media = open_media(path)
    info = media.info
    assert (info.format, info.media_type, info.animated) == (fmt, "video", True)
    assert info.frame_count == 5
    assert info.duration_s == pytest.approx(0.5)
    frames = list(media.frames(FrameSampling(mode="all", max_frames=None)))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [round(f.time_s, 3) for f in frames] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert not np.array_equal(frames[0].rgb, frames[1].rgb)
    assert len(list(media.frames(FrameSampling(mode="all", max_frames=2)))) == 2


def test_sniff_bytes_edge_cases() -> None:
    ftyp = b"\x00\x00\x00\x14ftyp"
    assert sniff_bytes(ftyp + b"qt  \x00\x00\x00\x00qt  ").format == "mov"
    assert sniff_bytes(ftyp + b"isom\x00\x00\x02\x00isom").format == "mp4"
    assert sniff_bytes(ftyp + b"avif\x00\x00\x00\x00avif").format == "avif"  # since 2026-12-06
    with pytest.raises(AntifakeError) as exc:
        sniff_bytes(ftyp + b"jp2 \x00\x00\x00\x00jp2 ")
    assert _code(exc) == "unsupported_media"
    assert sniff_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt ").format == "wav"  # audio since 0.4
    with pytest.raises(AntifakeError) as exc:
        sniff_bytes(b"RIFF\x10\x00\x00\x00CDXAfmt ")
    assert _code(exc) == "unsupported_media"
    assert sniff_bytes(b"MM\x00*\x00\x00\x00\x08" + b"\0" * 24).format == "tiff"
    assert sniff_bytes(b"GIF87a" + b"\0" * 26).format == "gif"


def test_sha256_and_to_dict_json(tmp_path: Path) -> None:
    import hashlib

    path = write_image(tmp_path / "a.png")
    info = open_media(path).info
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    json.dumps(info.to_dict())


# ------------------------------------------------------------------ sampling


def test_sampling_all(gop_video: Path) -> None:
    frames = list(open_media(gop_video).frames(FrameSampling(mode="all", max_frames=None)))
    assert [f.index for f in frames] == list(range(60))
    assert frames[10].time_s == pytest.approx(10 / 12, abs=1e-3)


def test_sampling_fps_picks_by_timestamp(gop_video: Path) -> None:
    frames = list(open_media(gop_video).frames(FrameSampling(mode="fps", fps=2)))
    assert len(frames) == 10
    for k, frame in enumerate(frames):
        assert abs(frame.time_s - k * 0.5) <= 0.5 / 12 + 1e-6


def test_sampling_max_spreads_over_whole_clip(gop_video: Path) -> None:
    media = open_media(gop_video)
    frames = list(media.frames(FrameSampling(mode="all", max_frames=6)))
    indices = [f.index for f in frames]
    assert len(indices) == 6
    assert indices[0] == 0 and indices[-1] == 59  # first and last, not the first six
    gaps = np.diff(indices)
    assert gaps.min() >= 10 and gaps.max() <= 13
    fps_capped = list(media.frames(FrameSampling(mode="fps", fps=12, max_frames=5)))
    assert len(fps_capped) == 5 and fps_capped[-1].time_s > 4.5


def test_sampling_keyframes(gop_video: Path) -> None:
    media = open_media(gop_video)
    frames = list(media.frames(FrameSampling(mode="keyframes", max_frames=None)))
    assert [f.index for f in frames] == [0, 10, 20, 30, 40, 50]
    assert all(f.keyframe for f in frames)
    capped = list(media.frames(FrameSampling(mode="keyframes", max_frames=3)))
    assert len(capped) == 3
    assert capped[0].index == 0 and capped[-1].index == 50
    assert all(f.keyframe for f in capped)


def test_image_frames_ignore_sampling(tmp_path: Path) -> None:
    media = open_media(write_image(tmp_path / "a.jpg"))
    for sampling in (FrameSampling(mode="keyframes"), FrameSampling(mode="fps", fps=30)):
        assert [f.index for f in media.frames(sampling)] == [0]


# ------------------------------------------------------------------ metadata


def test_jpeg_exif_xmp_comment(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0131] = "SynthEditor 2.0"  # Software
    exif[0x010F] = "ACME"  # Make
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"  # DateTimeOriginal (Exif IFD)
    exif.get_ifd(0x8825)[0x0002] = (52.0, 31.0, 12.5)  # GPSLatitude (GPS IFD)
    path = tmp_path / "meta.jpg"
    Image.fromarray(textured_rgb()).save(path, exif=exif, xmp=SAMPLE_XMP.encode(),
                                         comment=b"a comment")
    md = open_media(path).info.metadata
    assert md["exif"]["Software"] == "SynthEditor 2.0"
    assert md["exif"]["Make"] == "ACME"
    assert md["exif"]["DateTimeOriginal"] == "2024:01:02 03:04:05"
    assert "GPSLatitude" in md["exif"]
    assert "<x:xmpmeta" in md["xmp"]
    fields = md["xmp_fields"]
    assert fields["xmp:CreatorTool"] == "SynthGen 1.0"
    assert fields["Iptc4xmpExt:DigitalSourceType"].endswith("trainedAlgorithmicMedia")
    assert fields["photoshop:Credit"] == "Made with AI"
    assert fields["dc:creator"] == "Alice; Bob"
    assert md["comment"] == "a comment"
    json.dumps(md)


def test_png_text_and_itxt_xmp(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat, Steps: 20, Sampler: Euler a, Seed: 42")
    info.add_text("Software", "SynthGen", zip=True)  # zTXt
    info.add_itxt("XML:com.adobe.xmp", SAMPLE_XMP)
    path = tmp_path / "meta.png"
    Image.fromarray(textured_rgb()).save(path, pnginfo=info)
    md = open_media(path).info.metadata
    assert md["png_text"]["parameters"].startswith("a cat, Steps: 20")
    assert md["png_text"]["Software"] == "SynthGen"
    assert "XML:com.adobe.xmp" not in md["png_text"]
    assert md["xmp_fields"]["xmp:CreatorTool"] == "SynthGen 1.0"


def test_webp_xmp_chunk(tmp_path: Path) -> None:
    path = tmp_path / "meta.webp"
    Image.fromarray(textured_rgb()).save(path, xmp=SAMPLE_XMP.encode())
    assert open_media(path).info.metadata["xmp_fields"]["xmp:CreatorTool"] == "SynthGen 1.0"


def test_no_metadata_keys_when_absent(tmp_path: Path) -> None:
    assert open_media(write_image(tmp_path / "plain.bmp", fmt="BMP")).info.metadata == {}


def test_mp4_container_and_stream_tags(tmp_path: Path) -> None:
    path = write_video(tmp_path / "tagged.mp4",
                       metadata={"comment": "made by synth", "title": "t1"})
    md = open_media(path).info.metadata
    assert md["container_tags"]["comment"] == "made by synth"
    assert md["container_tags"]["encoder"].startswith("Lavf")
    assert md["stream_tags"]["handler_name"]
    json.dumps(md)


def test_metadata_is_bounded(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    for i in range(20):
        info.add_text(f"key{i}", "x" * 5000)
    path = tmp_path / "big_text.png"
    Image.fromarray(textured_rgb()).save(path, pnginfo=info)
    md = open_media(path, Limits(max_metadata_bytes=8000)).info.metadata
    assert md["truncated"] is True
    assert len(json.dumps(md).encode()) <= 8000
    assert md["png_text"]["key0"] == "x" * 5000  # kept in order until the budget ran out


# ------------------------------------------------------------------ limits


def test_png_declaring_huge_size_is_rejected_fast(tmp_path: Path) -> None:
    path = write_png_declaring(tmp_path / "bomb.png", 100_000, 100_000)
    started = time.perf_counter()
    with pytest.raises(AntifakeError) as exc:
        open_media(path)
    assert _code(exc) == "too_large"
    assert "pixels" in exc.value.message
    assert time.perf_counter() - started < 1.0


def test_png_over_our_pixel_limit_but_under_pillows(tmp_path: Path) -> None:
    path = write_png_declaring(tmp_path / "big.png", 5000, 5000)  # 25M px: Pillow allows
    with pytest.raises(AntifakeError) as exc:
        open_media(path, Limits(max_image_pixels=1_000_000))
    assert _code(exc) == "too_large" and "max_image_pixels" in exc.value.message


def test_file_size_limit(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    with pytest.raises(AntifakeError) as exc:
        open_media(path, Limits(max_file_bytes=10))
    assert _code(exc) == "too_large"


def test_video_limits(gop_video: Path) -> None:
    for limits in (Limits(max_duration_s=2.0), Limits(max_frames=30),
                   Limits(max_video_pixels=1000)):
        with pytest.raises(AntifakeError) as exc:
            open_media(gop_video, limits)
        assert _code(exc) == "too_large"


def test_decoded_frames_are_counted_when_count_is_not_declared(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.webm", container="webm", codec="libvpx-vp9", frames=24)
    media = open_media(path, Limits(max_frames=10))  # WebM declares no frame count
    assert media.info.frame_count is None
    with pytest.raises(AntifakeError) as exc:
        list(media.frames(FrameSampling(mode="all", max_frames=None)))
    assert _code(exc) == "too_large"


def test_animation_frame_limit(tmp_path: Path) -> None:
    path = write_animated_gif(tmp_path / "a.gif", frames=6)
    with pytest.raises(AntifakeError) as exc:
        open_media(path, Limits(max_frames=3))
    assert _code(exc) == "too_large"
