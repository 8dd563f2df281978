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
