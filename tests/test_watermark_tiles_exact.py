"""The watermark decoder's shared-work fast path reads exactly what a per-crop decode reads."""

from __future__ import annotations

import numpy as np
import pytest
import pywt

from antifake.detectors.watermark.detector import _regions
from antifake.detectors.watermark.marks import block_grid, block_readings, haar_approx


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_haar_approx_matches_pywt_bit_for_bit(dtype: type) -> None:
    rng = np.random.default_rng(0)
    x: np.ndarray = (rng.normal(0, 80, (130, 66)) if dtype is np.float32
         else rng.integers(0, 256, (130, 66))).astype(dtype)
    ours, ref = haar_approx(x), pywt.dwt2(x, "haar")[0]
    assert ours.dtype == ref.dtype
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("float_domain", [False, True])
def test_tile_subgrids_equal_decoding_each_tile(float_domain: bool) -> None:
    rng = np.random.default_rng(1)
    rgb = np.clip(rng.normal(128, 60, (1024, 1536, 3)), 0, 255).astype(np.uint8)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    grid = block_grid(bgr, float_domain=float_domain)
    tiles = [r for r in _regions(1024, 1536) if r[0] != "full"]
    assert len(tiles) == 6  # 2x3 tiles of 512
    for _, rows, cols in tiles:
        sub = grid[rows.start // 8 : rows.stop // 8, cols.start // 8 : cols.stop // 8]
        ref = block_readings(rgb[rows, cols][:, :, ::-1], float_domain=float_domain)
        assert np.array_equal(sub.ravel(), ref)
    assert np.array_equal(grid.ravel(), block_readings(bgr, float_domain=float_domain))
