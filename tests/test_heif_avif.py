"""HEIC/HEIF (iPhone photos) and AVIF pictures are read like other stills: sniffed from
their ISO-BMFF brand, decoded upright, their metadata read, their damage reported."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import synth
from antifake.config import FrameSampling, Limits
from antifake.errors import AntifakeError, ErrorCode
from antifake.media import open_media
from antifake.media.sniff import sniff_bytes
from antifake.media.types import MediaInfo

pillow_heif = pytest.importorskip("pillow_heif")  # HEIC writer for the tests (dev extra)

EXIF_ORIENTATION_TAG = 0x0112


def _quadrants(width: int = 160, height: int = 96) -> np.ndarray:
    """Four flat colours, so a turn or mirror is unmistakable after lossy coding."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[: height // 2, : width // 2] = (255, 0, 0)
    rgb[: height // 2, width // 2:] = (0, 255, 0)
    rgb[height // 2:, : width // 2] = (0, 0, 255)
    rgb[height // 2:, width // 2:] = (255, 255, 0)
    return rgb


def _exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = "iPhone 15"  # Model
    return exif.tobytes()



def write_heic(path: Path, rgb: np.ndarray, orientation: int = 1, xmp: str | None = None) -> Path:
    """An HEVC-coded HEIF still; an EXIF orientation other than 1 is written as the
    picture's rotation property (what iPhones store)."""
    heif = pillow_heif.from_pillow(Image.fromarray(rgb))
    buf = io.BytesIO()
    extra = {"xmp": xmp.encode()} if xmp else {}
    heif.save(buf, quality=90, exif=_exif(orientation), **extra)
    path.write_bytes(buf.getvalue())
    return path


def write_avif(path: Path, rgb: np.ndarray, orientation: int = 1, xmp: str | None = None) -> Path:
    extra = {"xmp": xmp.encode()} if xmp else {}
    Image.fromarray(rgb).save(path, format="AVIF", quality=90, exif=_exif(orientation), **extra)
    return path


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\0" * 32


@pytest.mark.parametrize(("head", "fmt"), [
    (_ftyp(b"heic", b"mif1", b"heic"), "heif"),
    (_ftyp(b"heix", b"mif1"), "heif"),
    (_ftyp(b"mif1", b"mif1", b"heic"), "heif"),
    (_ftyp(b"avif", b"avif", b"mif1"), "avif"),
    (_ftyp(b"avis", b"avis", b"msf1"), "avif"),
    (_ftyp(b"mif1", b"mif1", b"miaf", b"avif"), "avif"),
    (_ftyp(b"isom", b"isom", b"avc1"), "mp4"),
])
def test_heif_and_avif_brands_are_sniffed_as_pictures(head: bytes, fmt: str) -> None:
    sniffed = sniff_bytes(head)
    assert sniffed.format == fmt
    assert sniffed.media_type == ("video" if fmt == "mp4" else "image")


def test_jpeg2000_and_camera_raw_stay_unsupported() -> None:
    for brand in (b"jp2 ", b"crx "):
        with pytest.raises(AntifakeError) as err:
            sniff_bytes(_ftyp(brand, brand))
        assert err.value.code is ErrorCode.UNSUPPORTED_MEDIA


@pytest.mark.parametrize("writer", [write_heic, write_avif], ids=["heic", "avif"])
def test_portrait_phone_picture_is_decoded_upright(tmp_path: Path, writer: object) -> None:
    stored = _quadrants(160, 96)  # landscape sensor pixels, displayed turned 90 degrees cw
    path = writer(tmp_path / "phone.img", stored, orientation=6)  # type: ignore[operator]
    media = open_media(path)
    info: MediaInfo = media.info
    assert info.media_type == "image"
    assert (info.width, info.height) == (96, 160)
    rgb = next(media.frames()).rgb
    want = np.rot90(stored, k=-1)
    assert rgb.shape == want.shape
    assert np.abs(rgb.astype(int) - want).mean() < 6  # lossy, but far from any other turn
    assert np.abs(rgb.astype(int) - np.rot90(stored, k=1)).mean() > 60
    assert info.metadata["exif"]["Make"] == "Apple"
    assert info.metadata["exif"]["Model"] == "iPhone 15"


@pytest.mark.parametrize("writer", [write_heic, write_avif], ids=["heic", "avif"])
def test_generator_declared_in_xmp_is_read(tmp_path: Path, writer: object) -> None:
    from antifake.engine import Engine

    path = writer(tmp_path / "gen.img", synth.textured_rgb(128, 96),  # type: ignore[operator]
                  xmp=synth.SAMPLE_XMP)
    fields = open_media(path).info.metadata["xmp_fields"]
    assert fields["Iptc4xmpExt:DigitalSourceType"].endswith("trainedAlgorithmicMedia")
    result = Engine(detectors=["metadata"]).analyze(path)
    assert result.error is None
    metadata = {d.detector: d for d in result.detectors}["metadata"]
    assert metadata.score is not None and metadata.score > 0.5


@pytest.mark.parametrize(("writer", "fmt"), [(write_heic, "heif"), (write_avif, "avif")],
                         ids=["heic", "avif"])
def test_engine_judges_heif_and_avif_with_every_image_detector(
        tmp_path: Path, writer: object, fmt: str) -> None:
    from antifake.engine import Engine

    path = writer(tmp_path / "photo.img", synth.textured_rgb(160, 120))  # type: ignore[operator]
    result = Engine(detectors=["c2pa", "metadata", "forensic_image", "splicing"]).analyze(path)
    assert result.error is None and result.media_type == "image"
    assert result.media is not None and result.media["format"] == fmt
    assert result.verdict in ("ai_generated", "authentic", "uncertain")
    by_name = {d.detector: d for d in result.detectors}
    assert by_name["c2pa"].details["status"] == "no_manifest"  # read, not "unsupported_format"
    assert by_name["forensic_image"].score is not None


@pytest.mark.parametrize("writer", [write_heic, write_avif], ids=["heic", "avif"])
def test_truncated_picture_is_corrupt(tmp_path: Path, writer: object) -> None:
    whole = writer(tmp_path / "whole.img", synth.textured_rgb(160, 120))  # type: ignore[operator]
    cut = synth.truncated_copy(whole, tmp_path / "cut.img", fraction=0.6)
    with pytest.raises(AntifakeError) as err:
        open_media(cut)
    assert err.value.code is ErrorCode.CORRUPT_MEDIA


@pytest.mark.parametrize("writer", [write_heic, write_avif], ids=["heic", "avif"])
def test_pixel_limit_is_checked_before_decoding(tmp_path: Path, writer: object) -> None:
    path = writer(tmp_path / "big.img", synth.textured_rgb(160, 120))  # type: ignore[operator]
    with pytest.raises(AntifakeError) as err:
        open_media(path, Limits(max_image_pixels=160 * 120 - 1))
    assert err.value.code is ErrorCode.TOO_LARGE


def test_animated_avif_is_judged_as_a_video(tmp_path: Path) -> None:
    path = synth.write_animated_image(tmp_path / "anim.avif", "AVIF", frames=4, width=64,
                                      height=48, duration_ms=250)
    media = open_media(path)
    assert media.info.media_type == "video" and media.info.format == "avif"
    assert media.info.frame_count == 4
    assert media.info.duration_s == pytest.approx(1.0, abs=0.01)
    frames = list(media.frames(FrameSampling(mode="all")))
    assert [f.time_s for f in frames] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert not np.array_equal(frames[0].rgb, frames[3].rgb)


def test_missing_heif_decoder_is_a_clear_error(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from antifake.media import images

    path = write_heic(tmp_path / "photo.heic", synth.textured_rgb(64, 64))
    monkeypatch.setattr(images, "_heif_registered", False)
    monkeypatch.setitem(sys.modules, "pi_heif", None)  # import fails as if not installed
    with pytest.raises(AntifakeError) as err:
        open_media(path)
    assert err.value.code is ErrorCode.UNSUPPORTED_MEDIA
    assert "pi-heif" in err.value.message


def test_scan_walks_heic_and_avif_files_in_a_folder(tmp_path: Path) -> None:
    from antifake.cli import main

    folder = tmp_path / "phone"
    folder.mkdir()
    write_heic(folder / "IMG_0001.HEIC", synth.textured_rgb(96, 64, seed=1))
    write_avif(folder / "render.avif", synth.textured_rgb(96, 64, seed=2))
    (folder / "notes.txt").write_text("not media")
    res = CliRunner().invoke(main, ["scan", "--json", "-q", "--detectors", "metadata",
                                    str(folder)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert sorted(Path(d["file"]).name for d in lines) == ["IMG_0001.HEIC", "render.avif"]
    assert all(d["media_type"] == "image" and d["error"] is None for d in lines)
