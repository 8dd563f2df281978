"""Display orientation: photos' EXIF Orientation and videos' display matrix are applied
once at decode, so detectors, heatmaps and frame pictures see the picture upright."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import synth
from antifake.detectors.base import AnalysisContext
from antifake.detectors.watermark.detector import WatermarkDetector
from antifake.media import open_media, orientation


def _with_orientation(rgb: np.ndarray, code: int) -> Image.Image:
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[orientation.EXIF_ORIENTATION_TAG] = code
    img.info["exif"] = exif.tobytes()
    return img


@pytest.mark.parametrize("code", range(1, 9))
def test_to_display_matches_pillow_and_undo_inverts(code: int) -> None:
    rgb = np.random.default_rng(code).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    img = _with_orientation(rgb, code)
    want = np.asarray(ImageOps.exif_transpose(img))
    got = orientation.to_display(rgb, code)
    assert got.shape == want.shape and np.array_equal(got, want)
    assert np.array_equal(orientation.undo(got, code), rgb)
    assert orientation.swaps_sides(code) == (got.shape[:2] != rgb.shape[:2])


@pytest.mark.parametrize(("raw", "code"), [(None, 1), (0, 1), (9, 1), (-3, 1), (2**40, 1),
                                           ("x", 1), (6, 6), ("8", 8)])
def test_hostile_or_missing_codes_mean_as_stored(raw: object, code: int) -> None:
    assert orientation.valid_code(raw) == code


@pytest.mark.parametrize(("degrees", "code"), [(0, 1), (-90, 6), (270, 6), (90, 8),
                                               (-270, 8), (180, 3), (-180, 3), (45, 1)])
def test_video_rotation_maps_onto_exif_codes(degrees: float, code: int) -> None:
    assert orientation.from_rotation(degrees) == code


def test_portrait_photo_is_judged_and_drawn_upright(tmp_path: Path) -> None:
    upright = synth.textured_rgb(96, 160, seed=4)  # a portrait picture, 96 wide
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # the sensor's landscape pixels
    path = tmp_path / "phone.png"  # lossless, so the pixels compare exactly
    _with_orientation(stored, 6).save(path, exif=_with_orientation(stored, 6).info["exif"])
    media = open_media(path)
    assert media.info.orientation == 6 and media.info.to_dict()["orientation"] == 6
    assert (media.info.width, media.info.height) == (96, 160)
    frame = next(media.frames())
    assert np.array_equal(frame.rgb, upright)
    assert np.array_equal(media.preview(1000), upright)  # type: ignore[attr-defined]
    assert media.image.size == (160, 96)  # type: ignore[attr-defined]  # as stored


def test_damaged_orientation_tag_is_ignored(tmp_path: Path) -> None:
    rgb = synth.textured_rgb(96, 64)
    path = tmp_path / "odd.png"
    img = _with_orientation(rgb, 1)
    exif = img.getexif()
    exif[orientation.EXIF_ORIENTATION_TAG] = 77
    img.save(path, exif=exif.tobytes())
    media = open_media(path)
    assert media.info.orientation == 1
    assert np.array_equal(next(media.frames()).rgb, rgb)


def _set_track_matrix(path: Path, matrix: tuple[int, ...]) -> None:
    """Write ``matrix`` (a, b, u, c, d, v, x, y, w) into the first track header of an MP4,
    as phones record a portrait clip."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert at > 0 and data[at + 4] == 0  # version 0 header
    start = at - 4 + 48  # size, type, version/flags, times, ids, duration, layer... matrix
    data[start:start + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(data))


def test_portrait_phone_clip_frames_are_upright(tmp_path: Path) -> None:
    path = synth.write_video(tmp_path / "clip.mp4", frames=6, width=96, height=64)
    plain = [f.rgb for f in open_media(path).frames()]
    _set_track_matrix(path, (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000))
    media = open_media(path)
    assert media.info.orientation == 6
    assert (media.info.width, media.info.height) == (64, 96)
    turned = [f.rgb for f in media.frames()]
    assert len(turned) == len(plain)
    for a, b in zip(plain, turned, strict=True):
        assert b.shape == (96, 64, 3) and np.array_equal(b, np.rot90(a, k=-1))


def test_watermark_is_read_from_the_pixels_as_stored(tmp_path: Path) -> None:
    """An orientation tag set on a marked picture (a phone or an editor turned it) must not
    hide the mark: it lives in the stored pixels."""
    wm = pytest.importorskip("imwatermark")
    import cv2

    from antifake.detectors.watermark.marks import SDXL_MESSAGE

    rng = np.random.default_rng(3)
    low = rng.normal(0, 1, (32, 32, 3)).astype(np.float32)
    smooth = cv2.resize(low, (512, 512), interpolation=cv2.INTER_CUBIC)
    smooth = np.clip((smooth - smooth.min()) / np.ptp(smooth) * 200 + 20, 0, 255)
    encoder = wm.WatermarkEncoder()
    encoder.set_watermark("bits", [int(b) for b in bin(SDXL_MESSAGE)[2:]])
    marked = np.ascontiguousarray(
        encoder.encode(np.ascontiguousarray(smooth.astype(np.uint8)[:, :, ::-1]),
                       "dwtDct")[:, :, ::-1])
    path = tmp_path / "marked.png"
    _with_orientation(marked, 6).save(path, exif=_with_orientation(marked, 6).info["exif"])
    media = open_media(path)
    assert media.info.orientation == 6
    result = WatermarkDetector().analyze(media, AnalysisContext())
    assert result.score is not None and result.score > 0.9


def test_training_decodes_frames_as_the_engine_does(tmp_path: Path) -> None:
    """Training features and laundered copies must see the picture the engine judges."""
    from antifake.training.media_io import decode_frames

    upright = synth.textured_rgb(96, 160, seed=5)
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    photo = tmp_path / "phone.png"
    _with_orientation(stored, 6).save(photo, exif=_with_orientation(stored, 6).info["exif"])
    assert np.array_equal(decode_frames(photo)[0], next(open_media(photo).frames()).rgb)
    clip = synth.write_video(tmp_path / "clip.mp4", frames=4, width=96, height=64)
    _set_track_matrix(clip, (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000))
    first = decode_frames(clip, max_frames=1)[0]
    assert np.array_equal(first, next(open_media(clip).frames()).rgb)
    assert first.shape == (96, 64, 3)


def test_report_says_when_the_pixels_were_turned(tmp_path: Path) -> None:
    from antifake.engine import Engine
    from antifake.report.html import render_report_html

    upright = synth.textured_rgb(96, 160, seed=6)
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    phone = tmp_path / "phone.png"
    _with_orientation(stored, 6).save(phone, exif=_with_orientation(stored, 6).info["exif"])
    plain = synth.write_image(tmp_path / "plain.png", width=96, height=64)
    engine = Engine(detectors=["metadata"])
    turned = render_report_html(engine.analyze(phone), phone)
    assert "turned 90 degrees clockwise for display" in turned and "96 x 160 px" in turned
    assert "for display" not in render_report_html(engine.analyze(plain), plain)
