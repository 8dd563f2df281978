"""Frame preprocessing shared by the detector and its training code (no torch here)."""

from __future__ import annotations

import numpy as np
from PIL import Image

MAX_SIDE = 384  # working resolution: the long side is reduced to this (area filter)
GRID = 32  # H and W are cropped to a multiple of the network's coarsest stride


def prepare_rgb(rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Resize (area) so the long side is <= ``max_side``; centre-crop to a multiple of GRID.

    Inputs smaller than GRID on a side are padded by edge replication.
    """
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        nw, nh = max(GRID, round(w * scale)), max(GRID, round(h * scale))
        rgb = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BOX))
        h, w = nh, nw
    ch, cw = max(GRID, h // GRID * GRID), max(GRID, w // GRID * GRID)
    if ch > h or cw > w:
        rgb = np.pad(rgb, ((0, max(0, ch - h)), (0, max(0, cw - w)), (0, 0)), mode="edge")
        h, w = rgb.shape[:2]
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(rgb[y : y + ch, x : x + cw])


def to_array(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> (1, 3, H, W) float32 in [0, 1], the model input."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
