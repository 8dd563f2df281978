"""Synthesise small media for tests: no test may depend on ../shared.

Images come from numpy noise + shapes (so codecs have texture to work on), videos are
written with PyAV. Helpers are append-only: add new ones, don't change existing behaviour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image


def textured_rgb(width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth gradient plus noise and a rectangle: compressible but not flat."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [x * 255 / max(1, width - 1), y * 255 / max(1, height - 1), (x + y) % 256], axis=-1
    )
    img = base + rng.normal(0, 12, size=(height, width, 3))
    img[height // 4 : height // 2, width // 4 : width // 2] = (200, 40, 40)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_image(
    path: Path, fmt: str | None = None, width: int = 96, height: int = 64, seed: int = 0,
    **save_kwargs: Any,
) -> Path:
    """Write a textured image with Pillow; ``fmt`` defaults from the suffix."""
    Image.fromarray(textured_rgb(width, height, seed)).save(path, format=fmt, **save_kwargs)
    return path


def write_video(
    path: Path,
    container: str = "mp4",
    codec: str = "libx264",
    frames: int = 12,
    width: int = 64,
    height: int = 48,
    fps: int = 12,
    metadata: dict[str, str] | None = None,
    seed: int = 0,
) -> Path:
    """Write a short moving-texture video with PyAV (yuv420p)."""
    rng = np.random.default_rng(seed)
    base = textured_rgb(width + frames * 2, height, seed)
    with av.open(str(path), mode="w", format=container) as out:
        if metadata:
            out.metadata.update(metadata)
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if codec not in ("gif",) else "rgb8"
        for i in range(frames):
            arr = base[:, i * 2 : i * 2 + width].copy()
            arr = np.clip(arr.astype(int) + rng.integers(-3, 4, arr.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_animated_gif(path: Path, frames: int = 5, width: int = 48, height: int = 32) -> Path:
    imgs = [Image.fromarray(textured_rgb(width, height, seed=i)) for i in range(frames)]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=100, loop=0)
    return path


# --- media ingestion helpers (antifake.media tests) -------------------------------------

SAMPLE_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
    ' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' xmp:CreatorTool="SynthGen 1.0"'
    ' Iptc4xmpExt:DigitalSourceType='
    '"http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">'
    "<photoshop:Credit>Made with AI</photoshop:Credit>"
    "<dc:creator><rdf:Seq><rdf:li>Alice</rdf:li><rdf:li>Bob</rdf:li></rdf:Seq></dc:creator>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
    '<?xpacket end="w"?>'
)


def write_animated_image(
    path: Path, fmt: str, frames: int = 5, width: int = 48, height: int = 32,
    duration_ms: int = 100,
) -> Path:
    """Animated ``WEBP`` / ``PNG`` (APNG) / ``GIF`` with distinct frames."""
    imgs = [Image.fromarray(textured_rgb(width, height, seed=i)) for i in range(frames)]
    imgs[0].save(
        path, format=fmt, save_all=True, append_images=imgs[1:], duration=duration_ms, loop=0
    )
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny, hand-written PNG whose IHDR declares ``width`` x ``height`` RGB pixels
    (a decompression bomb header: the file is a few dozen bytes)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IEND", b""))
    return path


def truncated_copy(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of ``src`` to ``dst`` (an interrupted download)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def flipped_copy(src: Path, dst: Path, start: int, count: int = 16) -> Path:
    """Copy ``src`` with ``count`` bytes from ``start`` inverted (bit rot in a header)."""
    data = bytearray(src.read_bytes())
    for i in range(start, min(len(data), start + count)):
        data[i] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def scrambled_copy(src: Path, dst: Path, lo: float, hi: float, seed: int = 0) -> Path:
    """Copy ``src`` with the bytes between fractions ``lo`` and ``hi`` replaced by noise,
    keeping the file size (damage in the middle of a stream)."""
    data = bytearray(src.read_bytes())
    a, b = int(len(data) * lo), int(len(data) * hi)
    data[a:b] = np.random.default_rng(seed).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def write_video_gop(
    path: Path, frames: int = 60, gop: int = 10, fps: int = 12, width: int = 64,
    height: int = 48, container: str = "mp4",
) -> Path:
    """H.264 video with a keyframe exactly every ``gop`` frames (scene-cut detection off),
    so keyframe sampling has a known answer."""
    base = textured_rgb(width + frames * 2, height, seed=1)
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(
            "libx264", rate=fps,
            options={"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"},
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(base[:, i * 2 : i * 2 + width].copy(), "rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def voice_like(seconds: float = 2.0, rate: int = 16000, seed: int = 0,
               f0: float = 140.0) -> np.ndarray:
    """A voice-like mono float32 signal: a gliding harmonic series with syllable-rate
    amplitude modulation, plus a little noise (tests need sound, not words)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    sig = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) ** 2
    out = 0.2 * sig * envelope + 0.003 * rng.standard_normal(t.size)
    return np.clip(out, -1, 1).astype(np.float32)


def music_like(seconds: float = 8.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """An instrumental-like mono float32 signal: a four-chord loop of harmonic tones, two
    chords a second, with a decaying noise burst (a drum) on each change; no voice."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    chords = [(220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6),
              (196.0, 246.9, 293.7)]
    for i in range(int(seconds * 2)):
        seg = (t >= i * 0.5) & (t < (i + 1) * 0.5)
        for f in chords[i % 4]:
            for k in range(1, 6):
                out[seg] += np.sin(2 * np.pi * f * k * t[seg]) / k ** 1.5
        hit, start = int(0.08 * rate), int(i * 0.5 * rate)
        burst = rng.standard_normal(hit) * np.exp(-np.arange(hit) / 300) * 2
        out[start:start + hit] += burst[: max(0, min(hit, out.size - start))]
    return np.clip(0.3 * out / np.abs(out).max(), -1, 1).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray | None = None, rate: int = 16000,
                container: str | None = None, codec: str = "pcm_s16le", channels: int = 1,
                metadata: dict[str, str] | None = None, bit_rate: int | None = None) -> Path:
    """Write mono ``samples`` (default :func:`voice_like`) with PyAV.

    ``container``/``codec`` e.g. wav/pcm_s16le, flac/flac, mp3/libmp3lame, ogg/libopus,
    ipod/aac (an .m4a), webm/libopus.
    """
    samples = voice_like(rate=rate) if samples is None else samples
    fmt = container or path.suffix.lstrip(".")
    layout = "mono" if channels == 1 else "stereo"
    data = np.repeat(samples[None, :], channels, axis=0)
    with av.open(str(path), mode="w", format=fmt) as out:
        if metadata:
            out.metadata.update(metadata)
        stream = out.add_stream(codec, rate=48000 if codec == "libopus" else rate)
        stream.layout = layout
        if bit_rate:
            stream.bit_rate = bit_rate
        _encode_audio(out, stream, data, rate, layout)
    return path


def _encode_audio(out: Any, stream: Any, data: np.ndarray, rate: int, layout: str) -> None:
    """Encode ``data`` ((channels, n) float in [-1, 1] at ``rate``) into ``stream`` of the
    open container ``out``: packed s16, resampled to what the encoder takes, flushed."""
    pcm = (np.clip(data, -1, 1) * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(pcm.T.reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = rate
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout,
                                  rate=stream.codec_context.sample_rate)
    for conv in resampler.resample(frame) + resampler.resample(None):
        for packet in stream.encode(conv):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def write_video_with_audio(path: Path, seconds: float = 2.0, fps: int = 12,
                           width: int = 64, height: int = 48) -> Path:
    """An MP4 (H.264 + AAC) whose sound is :func:`voice_like`."""
    rate = 16000
    samples = voice_like(seconds, rate)
    base = textured_rgb(width + 64, height)
    with av.open(str(path), mode="w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        aus = out.add_stream("aac", rate=rate)
        aus.layout = "mono"
        for i in range(int(seconds * fps)):
            arr = np.ascontiguousarray(base[:, i % 64: i % 64 + width])
            for packet in vs.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        _encode_audio(out, aus, samples[None, :], rate, "mono")
    return path
