"""MP4/MOV tracks declaring absurd sample counts are refused before FFmpeg indexes them."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from antifake.config import Limits
from antifake.errors import AntifakeError, ErrorCode
from antifake.media import open_media
from antifake.media.bmff import check_sample_counts, track_samples
from synth import write_video


def _write_av(path: Path, audio_codec: str, container: str, seconds: float = 1.0) -> Path:
    """A 64x48 H.264 clip at 10 fps with an audio track of ``audio_codec`` at 8 kHz."""
    rate = 8000
    with av.open(str(path), "w", format=container) as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream(audio_codec, rate=rate)
        a.layout = "mono"
        n_video = int(seconds * 10)
        for i in range(n_video):
            img = np.full((48, 64, 3), (i * 20) % 255, np.uint8)
            for pkt in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        fmt = "fltp" if audio_codec == "aac" else "s16"
        dtype = np.float32 if fmt == "fltp" else np.int16
        chunk = 1024
        for k in range(int(seconds * rate) // chunk):
            samples = np.zeros((1, chunk), dtype)
            frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
            frame.sample_rate = rate
            frame.pts = k * chunk
            frame.time_base = Fraction(1, rate)
            for pkt in a.encode(frame):
                out.mux(pkt)
        for stream in (v, a):
            for pkt in stream.encode():
                out.mux(pkt)
    return path


def _patch_stsz(data: bytes, track: int, sample_size: int, count: int) -> bytes:
    """Rewrite the ``track``-th stsz box's sample_size and sample_count fields."""
    buf = bytearray(data)
    pos = -1
    for _ in range(track + 1):
        pos = buf.index(b"stsz", pos + 1)
    struct.pack_into(">II", buf, pos + 8, sample_size, count)
    return bytes(buf)


def test_track_walk_reads_handler_and_counts(tmp_path: Path) -> None:
    path = _write_av(tmp_path / "av.mp4", "aac", "mp4")
    with open(path, "rb") as fh:
        tracks = track_samples(fh, path.stat().st_size)
    by_handler = {t.handler: t for t in tracks}
    assert set(by_handler) == {b"vide", b"soun"}
    assert by_handler[b"vide"].sample_count == 10
    # AAC: 1024 samples per packet at 8 kHz, about 8 packets for one second.
    assert 5 <= by_handler[b"soun"].sample_count <= 12


def test_video_track_declaring_millions_of_samples_is_too_large(tmp_path: Path) -> None:
    src = write_video(tmp_path / "v.mp4", frames=12)
    bomb = tmp_path / "bomb.mp4"
    bomb.write_bytes(_patch_stsz(src.read_bytes(), 0, 100, 20_000_000))
    with pytest.raises(AntifakeError) as info:
        open_media(bomb)
    assert info.value.code is ErrorCode.TOO_LARGE
    assert "20000000 frames" in info.value.message and "max_frames" in info.value.message


def test_video_track_cap_follows_max_frames(tmp_path: Path) -> None:
    src = write_video(tmp_path / "v.mov", container="mov", frames=12)
    assert open_media(src, Limits(max_frames=12)).info.media_type == "video"
    with pytest.raises(AntifakeError) as info:
        open_media(src, Limits(max_frames=11))
    assert info.value.code is ErrorCode.TOO_LARGE


def test_non_video_track_with_a_per_sample_table_is_capped(tmp_path: Path) -> None:
    src = _write_av(tmp_path / "av.mp4", "aac", "mp4")
    data = src.read_bytes()
    with open(src, "rb") as fh:
        order = [t.handler for t in track_samples(fh, len(data))]
    bomb = tmp_path / "audio_bomb.mp4"
    bomb.write_bytes(_patch_stsz(data, order.index(b"soun"), 0, 50_000_000))
    limits = Limits(max_frames=1000, max_duration_s=60)  # cap max(1000, 200 * 60) = 12000
    with pytest.raises(AntifakeError) as info:
        open_media(bomb, limits)
    assert info.value.code is ErrorCode.TOO_LARGE
    assert "'soun' track declares 50000000 samples" in info.value.message


def test_pcm_audio_with_constant_sample_size_is_not_refused(tmp_path: Path) -> None:
    """Uncompressed audio declares one sample per PCM frame (8000 per second here), far
    above a small max_frames; FFmpeg indexes it per chunk, so it must stay accepted."""
    path = _write_av(tmp_path / "pcm.mov", "pcm_s16le", "mov", seconds=2.0)
    with open(path, "rb") as fh:
        sound = [t for t in track_samples(fh, path.stat().st_size) if t.handler == b"soun"]
    assert sound and sound[0].sample_size != 0 and sound[0].sample_count > 100
    limits = Limits(max_frames=100, max_duration_s=0.4)  # non-video cap: max(100, 80)
    with open(path, "rb") as fh:
        check_sample_counts(fh, "mov", path.stat().st_size, limits)
    media = open_media(path, Limits(max_frames=100))
    assert media.info.media_type == "video" and media.info.frame_count == 20


def test_box_walk_survives_nonsense_sizes(tmp_path: Path) -> None:
    """Boxes that overrun their parent or nest without end stop the walk, no exception."""
    junk = (struct.pack(">I4s", 0xFFFFFFF0, b"moov")
            + struct.pack(">I4s", 16, b"trak") * 4 + b"\x00" * 8)
    path = tmp_path / "junk.mp4"
    path.write_bytes(junk)
    with open(path, "rb") as fh:
        assert track_samples(fh, len(junk)) == []
    nested = b"".join(struct.pack(">I4s", 8 * (40 - i), b"moov") for i in range(40))
    with open(path, "wb") as fh:
        fh.write(nested)
    with open(path, "rb") as fh:
        assert track_samples(fh, len(nested)) == []
