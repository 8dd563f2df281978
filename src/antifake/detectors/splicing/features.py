"""Splicebuster-style local noise statistics and their robust outlier map.

Method (after Cozzolino, Poggi & Verdoliva, "Splicebuster: a new blind image splicing
detector", IEEE WIFS 2015): a third-order high-pass residual exposes the camera/codec
noise, and local statistics of it are compared block by block; blocks that disagree with
the bulk of the image are splicing candidates. Simplified for speed and robustness on
small, recompressed media: instead of Splicebuster's 625-bin co-occurrence histograms and
two-component GMM we use low-dimensional per-window statistics - three noise-level
estimators (mean of the lowest 50 %/20 % of |3rd-order residual|, lowest 50 % of |1st
difference|; cf. Lyu, Pan & Zhang, "Exposing region splicing forgeries with blind local
noise estimation", IJCV 2014) and two JPEG-grid ratios (8x8 boundary vs interior
differences) - regressed on content covariates (coarse-scale gradient, brightness) with a
trimmed least-squares fit, then robustly standardised (median/MAD for the noise level,
trimmed-covariance Mahalanobis for the grid pair). A pasted region most often differs in
noise level (other camera, other JPEG history, generator smoothness, resampling).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from threadpoolctl import ThreadpoolController

CELL = 16  # statistics are collected on windows of 2x2 cells (32 px), stride CELL
MAX_EVIDENCE_CELLS = 24
MAX_PIXELS = 3_000_000  # larger inputs are reduced by an integer factor first
FEATURES = ("noise_r3", "noise_r3_floor", "noise_r1", "jpeg_grid_h", "jpeg_grid_v")


@dataclass
class OutlierMap:
    """Per-cell robust z-scores of disagreement with the rest of the frame."""

    z: np.ndarray  # (rows, cols) float32; NaN where a cell was not assessed
    valid: np.ndarray  # (rows, cols) bool
    cell: int  # cell size in pixels of the analysed image
    scale: int  # integer factor the input was reduced by
    shape: tuple[int, int]  # (h, w) of the input
    sign: np.ndarray | None = None  # +1 noisier than expected, -1 smoother


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 -> uint8 luma (BT.601, OpenCV's rounding); a 2-D map stays uint8 or
    becomes float32."""
    if rgb.ndim == 2:
        return rgb if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    return cv2.cvtColor(np.asarray(rgb[..., :3], dtype=np.uint8), cv2.COLOR_RGB2GRAY)


def _windows(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows, cols, 4*CELL*CELL): the pixels of the 2x2-cell window starting at each cell
    (the last row/column of windows repeats the edge cells)."""
    h, w = rows * CELL, cols * CELL
    c = x[:h, :w].reshape(rows, CELL, cols, CELL).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    p = np.pad(c, [(0, 1), (0, 1), (0, 0)], mode="edge")
    return np.concatenate([p[:-1, :-1], p[1:, :-1], p[:-1, 1:], p[1:, 1:]], axis=-1)


def _low_mean(win: np.ndarray, frac: float) -> np.ndarray:
    """Mean of the lowest ``frac`` of values in each window: dominated by noise, not edges."""
    k = max(1, int(win.shape[-1] * frac))
    return np.partition(win, k - 1, axis=-1)[..., :k].mean(-1)


HIST_BINS = 64  # per-cell histogram bins of the exact low means (values >= 63 share the last)


@functools.lru_cache(maxsize=4)
def _cell_bin_offsets(rows: int, cols: int) -> np.ndarray:
    """(rows, CELL, cols, CELL) int32: each pixel's cell number times HIST_BINS (read-only)."""
    cell = np.arange(rows * cols, dtype=np.int32).reshape(rows, 1, cols, 1) * HIST_BINS
    out = np.ascontiguousarray(np.broadcast_to(cell, (rows, CELL, cols, CELL)))
    out.flags.writeable = False
    return out


def _low_sums_exact(half_units: np.ndarray, rows: int, cols: int,
                    ks: tuple[int, ...]) -> list[np.ndarray]:
    """Per window, the exact integer sum of its ``k`` smallest values, for each ``k``.

    ``half_units`` is a non-negative int16 map. Every window is 2x2 cells, so a window's
    histogram is the sum of four cell histograms (one ``bincount`` for the whole map); the
    ``k``-th smallest value is the first bin whose cumulative count reaches ``k``, and the
    sum of the ``k`` smallest is the weighted count below that bin plus the rest at that
    bin's value. Values from HIST_BINS - 1 up share the last bin, so the few windows whose
    ``k``-th smallest value lands there (strong texture) are sorted instead.
    """
    h, w = rows * CELL, cols * CELL
    clipped = np.minimum(half_units[:h, :w], HIST_BINS - 1).reshape(rows, CELL, cols, CELL)
    index = np.add(clipped, _cell_bin_offsets(rows, cols), dtype=np.int32)
    cells = np.bincount(index.ravel(), minlength=rows * cols * HIST_BINS).astype(np.int32)
    p = np.pad(cells.reshape(rows, cols, HIST_BINS), [(0, 1), (0, 1), (0, 0)], mode="edge")
    hist = p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]  # the windows of _windows
    count_le = np.cumsum(hist, axis=-1)
    sum_le = np.cumsum(hist * np.arange(HIST_BINS, dtype=np.int32), axis=-1)
    out = []
    windows: np.ndarray | None = None
    for k in ks:
        kth = np.argmax(count_le >= k, axis=-1)[..., None]  # the k-th smallest value
        below = np.maximum(kth - 1, 0)
        n_below = np.where(kth > 0, np.take_along_axis(count_le, below, -1), 0)
        s_below = np.where(kth > 0, np.take_along_axis(sum_le, below, -1), 0)
        total = (s_below + (k - n_below) * kth)[..., 0].astype(np.int64)
        overflow = kth[..., 0] >= HIST_BINS - 1
        if overflow.any():
            if windows is None:
                windows = _windows(half_units, rows, cols)
            ordered = np.sort(windows[overflow], axis=-1, kind="stable")
            total[overflow] = ordered[:, :k].sum(-1, dtype=np.int64)
        out.append(total)
    return out


def _low_means_exact(half_units: np.ndarray, rows: int, cols: int,
                     fracs: tuple[float, ...]) -> list[np.ndarray]:
    """:func:`_low_mean` of ``half_units / 2`` per window, for several fractions at once.

    ``half_units`` is int16 (twice a half-integer-valued, non-negative map). The sums are
    exact integers (:func:`_low_sums_exact`), and the means equal :func:`_low_mean`'s
    float32 results bit for bit: there the float32 sum of at most 1024 half-integers below
    2048 is exact in any order (< 2**22), and the division is numpy's mean's own (float32
    sum / intp count, cast back).
    """
    n = 4 * CELL * CELL
    ks = tuple(max(1, int(n * frac)) for frac in fracs)
    out = []
    for k, total in zip(ks, _low_sums_exact(half_units, rows, cols, ks), strict=True):
        mean = total.astype(np.float32) * np.float32(0.5)
        out.append(np.true_divide(mean, np.intp(k), out=mean, casting="unsafe"))
    return out


def _cell_sums(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) float64 sums of ``x`` over each CELL x CELL cell."""
    h, w = rows * CELL, cols * CELL
    # Rows of a cell first (a contiguous reduction), then columns: 5x faster than one
    # reduction over both axes. Integer maps sum exactly in int32 (|x| < 2**15 here).
    acc = np.int32 if np.issubdtype(x.dtype, np.integer) else np.float64
    rows_summed = x[:h, :w].reshape(rows, CELL, w).sum(axis=1, dtype=acc)
    return rows_summed.reshape(rows, cols, CELL).sum(axis=-1).astype(np.float64)


def _cells_to_windows(cells: np.ndarray) -> np.ndarray:
    """Per-window float32 sums (the 2x2-cell windows of :func:`_windows`) from cell sums."""
    p = np.pad(cells, [(0, 1), (0, 1)], mode="edge")
    return (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]).astype(np.float32)


def _grid_ratio_exact(d: np.ndarray, axis: int, rows: int, cols: int) -> np.ndarray:
    """The JPEG-grid ratio of :func:`cell_features` for an integer-valued difference map.

    Boundary pixels are the columns (``axis=1``) or rows (``axis=0``) 7 and 15 of every
    16-px cell; "inside" sums are the total minus the boundary sums. Every sum is an exact
    integer, so this equals the masked window sums bit for bit at a fraction of the cost.
    """
    h, w = rows * CELL, cols * CELL
    region = d[:h, :w]
    if axis == 1:
        on = (region[:, 7::16] + region[:, 15::16]).reshape(rows, CELL, cols).sum(
            axis=1, dtype=np.float64)
    else:
        on = (region[7::16, :] + region[15::16, :]).reshape(rows, cols, CELL).sum(
            axis=2, dtype=np.float64)
    total = _cell_sums(d, rows, cols)
    on_count = np.full((rows, cols), 2.0 * CELL)
    off_count = np.full((rows, cols), float(CELL * CELL) - 2.0 * CELL)
    num = _cells_to_windows(on) / (_cells_to_windows(on_count) + 1e-6)
    den = _cells_to_windows(total - on) / (_cells_to_windows(off_count) + 1e-6)
    return np.asarray(np.log((num + 0.5) / (den + 0.5)))


def cell_features(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-cell (rows, cols, F) noise features, (rows, cols, 2) content covariates,
    validity mask, and the integer reduction factor applied to ``grey``.

    ``grey`` is a luma map: uint8 (what :func:`to_grey` gives) or float. 8-bit luma not
    reduced below takes an exact integer path; anything else (a reduced large image, float
    luma) the general one. Both give the same features for the same values.
    """
    h, w = grey.shape
    scale = 1
    while (h // scale) * (w // scale) > MAX_PIXELS:
        scale += 1
    if scale > 1:
        grey = cv2.resize(grey.astype(np.float32), (w // scale, h // scale),
                          interpolation=cv2.INTER_AREA)
    h, w = grey.shape
    rows, cols = h // CELL, w // CELL
    if rows < 3 or cols < 3:
        raise ValueError("image too small for splicing analysis")
    grey_f = grey.astype(np.float32)
    feats, level = (_noise_features_exact(grey, rows, cols) if grey.dtype == np.uint8
                    else _noise_features_general(grey_f, rows, cols))
    # Content covariate measured at a coarse scale, so that added noise does not raise it.
    smooth = cv2.GaussianBlur(grey_f, (0, 0), 2.5)
    grad = np.abs(cv2.Sobel(smooth, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    texture = _cells_to_windows(_cell_sums(grad, rows, cols)) / np.float32(4 * CELL * CELL)
    covars = np.stack([np.log(texture + 1.0), level / 255.0], axis=-1)
    # Clipped (saturated or black) cells carry no noise to compare.
    valid = (level > 10) & (level < 245)
    return feats.astype(np.float64), covars.astype(np.float64), valid, scale


_K3 = np.array([[-1.0, 3.0, -3.0, 1.0]], dtype=np.float32)  # third-order residual filter


def _stack_noise(noise_r3: np.ndarray, noise_r3_floor: np.ndarray, noise_r1: np.ndarray,
                 grid_h: np.ndarray, grid_v: np.ndarray) -> np.ndarray:
    return np.stack([np.log(noise_r3 + 0.2), np.log(noise_r3_floor + 0.2),
                     np.log(noise_r1 + 0.2), grid_h, grid_v], axis=-1)


def _noise_features_exact(grey: np.ndarray, rows: int,
                          cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols, F) noise features and (rows, cols) mean level of 8-bit luma.

    Integer arithmetic throughout: the residuals are exact int16 (twice r3 and r1 of the
    general path, which are half-integers there), low means come from per-cell histograms
    and window sums from cell sums, all exact, so the features equal the general path's.
    """
    r3x2 = np.abs(cv2.filter2D(grey, cv2.CV_16S, _K3, borderType=cv2.BORDER_REFLECT)) \
        + np.abs(cv2.filter2D(grey, cv2.CV_16S, _K3.T, borderType=cv2.BORDER_REFLECT))
    g16 = grey.astype(np.int16)
    d_h = np.abs(np.diff(g16, axis=1, append=g16[:, -1:]))
    d_v = np.abs(np.diff(g16, axis=0, append=g16[-1:, :]))
    noise_r3, noise_r3_floor = _low_means_exact(r3x2, rows, cols, (0.5, 0.2))
    (noise_r1,) = _low_means_exact(d_h + d_v, rows, cols, (0.5,))
    # An exact window sum over 1024 pixels divided by 1024 is exactly the float32 mean.
    level = _cells_to_windows(_cell_sums(grey, rows, cols)) / np.float32(4 * CELL * CELL)
    feats = _stack_noise(noise_r3, noise_r3_floor, noise_r1,
                         _grid_ratio_exact(d_h, 1, rows, cols),
                         _grid_ratio_exact(d_v, 0, rows, cols))
    return feats, level


def _noise_features_general(grey: np.ndarray, rows: int,
                            cols: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_noise_features_exact` for float luma, with masked window statistics."""
    r3 = (np.abs(cv2.filter2D(grey, cv2.CV_32F, _K3, borderType=cv2.BORDER_REFLECT))
          + np.abs(cv2.filter2D(grey, cv2.CV_32F, _K3.T, borderType=cv2.BORDER_REFLECT))) / 2
    d_h = np.abs(np.diff(grey, axis=1, append=grey[:, -1:]))
    d_v = np.abs(np.diff(grey, axis=0, append=grey[-1:, :]))
    w3 = _windows(r3, rows, cols)
    noise_r1 = _low_mean(_windows((d_h + d_v) / 2, rows, cols), 0.5)

    # JPEG grid: differences across 8-px block boundaries vs inside blocks. A region with
    # another compression history (or a shifted grid) breaks the frame-wide pattern.
    def grid_ratio(d: np.ndarray, axis: int) -> np.ndarray:
        on = np.zeros_like(grey)
        if axis == 1:
            on[:, 7::8] = 1.0
        else:
            on[7::8, :] = 1.0
        num = _windows(d * on, rows, cols).sum(-1) / (_windows(on, rows, cols).sum(-1) + 1e-6)
        off = 1.0 - on
        den = _windows(d * off, rows, cols).sum(-1) / (_windows(off, rows, cols).sum(-1) + 1e-6)
        return np.asarray(np.log((num + 0.5) / (den + 0.5)))

    feats = _stack_noise(_low_mean(w3, 0.5), _low_mean(w3, 0.2), noise_r1,
                         grid_ratio(d_h, 1), grid_ratio(d_v, 0))
    return feats, _windows(grey, rows, cols).mean(-1)


def _trimmed_lstsq(a: np.ndarray, y: np.ndarray, trim: float, iters: int) -> np.ndarray:
    """Least squares refit on the ``trim`` fraction of rows with the smallest residuals."""
    keep = np.ones(len(y), dtype=bool)
    coef = np.zeros((a.shape[1], y.shape[1]))
    for _ in range(iters):
        coef, *_ = np.linalg.lstsq(a[keep], y[keep], rcond=None)
        res = np.abs(y - a @ coef).sum(-1)
        keep = res <= np.quantile(res, trim)
    return coef


_blas: ThreadpoolController | None = None
_blas_lock = threading.Lock()


def blas_controller() -> ThreadpoolController:
    """The process's threadpoolctl controller, created on first call.

    Call it before detectors run on several threads (``SplicingDetector.__init__`` does):
    creating it scans the loaded libraries with ``dl_iterate_phdr`` and a Python callback,
    which deadlocks against a ``dlopen`` on another thread (seen with a lazy import of
    onnxruntime by forensic_image running concurrently).
    """
    global _blas
    with _blas_lock:
        if _blas is None:
            _blas = ThreadpoolController()
        return _blas


def _single_threaded_blas() -> Any:
    """Context limiting BLAS to one thread.

    The fits below are tiny (thousands x 6): OpenBLAS's worker threads cost far more than
    they save (lstsq 8.6 ms with 2 threads vs 0.3 ms with 1 on a busy 2-core machine), and
    the results are identical (checked against OPENBLAS_NUM_THREADS=1).
    """
    return blas_controller().limit(limits=1, user_api="blas")


def robust_outlier_map(grey: np.ndarray, trim: float = 0.6, iters: int = 4) -> OutlierMap:
    """Per-cell robust z-score of disagreement with the image's bulk noise statistics
    (see :func:`_robust_outlier_map`), with BLAS limited to one thread."""
    with _single_threaded_blas():
        return _robust_outlier_map(grey, trim, iters)


def _robust_outlier_map(grey: np.ndarray, trim: float, iters: int) -> OutlierMap:
    """Per-cell robust z-score of disagreement with the image's bulk noise statistics.

    1. Noise features depend on content (texture, brightness): regress them on those
       covariates with a trimmed least-squares fit and keep the residuals.
    2. Fit a trimmed (MCD-like) Gaussian to the residual vectors; a cell's Mahalanobis
       distance, robustly standardised (median/MAD), is its z-score.
    """
    feats, covars, valid, scale = cell_features(grey)
    rows, cols, f = feats.shape
    vflat = valid.ravel()
    z_full = np.full(rows * cols, np.nan, dtype=np.float32)
    sign_full = np.zeros(rows * cols, dtype=np.float32)
    if vflat.sum() < 12:
        return OutlierMap(z_full.reshape(rows, cols), valid, CELL * scale, scale, grey.shape,
                          sign_full.reshape(rows, cols))
    x = feats.reshape(-1, f)[vflat]
    c = covars.reshape(-1, covars.shape[-1])[vflat]
    a = np.column_stack([np.ones(len(c)), c, c[:, 1] ** 2, c[:, 0] * c[:, 1]])
    res = x - a @ _trimmed_lstsq(a, x, trim, iters)
    # Noise level: the three estimators move together when noise differs, so their mean
    # residual is tested on its own (a Mahalanobis distance would discount exactly that
    # direction, the one with most natural variance). The JPEG-grid pair is tested jointly.
    noise = res[:, :3].mean(1)
    med = np.median(noise)
    z_noise = (noise - med) / (1.4826 * np.median(np.abs(noise - med)) + 1e-6)
    grid = res[:, 3:]
    inliers = np.ones(len(grid), dtype=bool)
    dist = np.zeros(len(grid))
    for _ in range(iters):
        centre = grid[inliers].mean(0)
        cov = np.cov(grid[inliers].T) + np.eye(grid.shape[1]) * 1e-4
        diff = grid - centre
        dist = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
        inliers = dist <= np.quantile(dist, trim)
    r = np.sqrt(dist)
    med_r = np.median(r)
    z_grid = (r - med_r) / (1.4826 * np.median(np.abs(r - med_r)) + 1e-6)
    z_full[vflat] = np.maximum(np.abs(z_noise), z_grid).astype(np.float32)
    sign_full[vflat] = np.sign(z_noise)
    return OutlierMap(z_full.reshape(rows, cols), valid, CELL * scale, scale, grey.shape,
                      sign_full.reshape(rows, cols))


def heatmap_from_map(om: OutlierMap, z_full: float = 8.0) -> np.ndarray:
    """HxW float32 heatmap in [0, 1] at the input resolution (z=0 -> 0, z>=z_full -> 1)."""
    z = np.nan_to_num(om.z, nan=0.0)
    cell_map = np.clip(z / z_full, 0.0, 1.0).astype(np.float32)
    h, w = om.shape
    # Cells cover the top-left rows*cell x cols*cell region; stretch to the full frame.
    return cv2.resize(cell_map, (w, h), interpolation=cv2.INTER_LINEAR).clip(0.0, 1.0)


@dataclass
class Region:
    """The most anomalous compact region found in an outlier map."""

    strength: float  # mean z inside the region (0 when none)
    area_frac: float  # fraction of the analysed cells
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in input pixels
    n_cells: int


def strongest_region(om: OutlierMap, z_thresh: float = 3.0, max_frac: float = 0.5) -> Region:
    """Largest-evidence connected component of cells with z >= ``z_thresh``.

    Isolated single cells are content (a specular highlight, text) far more often than a
    splice, so a region's evidence is its mean z times sqrt(cells) (saturating at
    ``MAX_EVIDENCE_CELLS`` so that large images do not score higher); regions covering more
    than ``max_frac`` of the frame are not "a region that disagrees with the rest".
    """
    z = np.nan_to_num(om.z, nan=0.0)
    hot = (z >= z_thresh).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    total = max(1, int(om.valid.sum()))
    best = Region(0.0, 0.0, (0, 0, 0, 0), 0)
    best_ev = 0.0
    for lab in range(1, n):
        cells = int(stats[lab, cv2.CC_STAT_AREA])
        if cells < 2 or cells / total > max_frac:
            continue
        mean_z = float(z[labels == lab].mean())
        evidence = mean_z * np.sqrt(min(cells, MAX_EVIDENCE_CELLS))
        if evidence > best_ev:
            x0, y0 = int(stats[lab, cv2.CC_STAT_LEFT]), int(stats[lab, cv2.CC_STAT_TOP])
            bw, bh = int(stats[lab, cv2.CC_STAT_WIDTH]), int(stats[lab, cv2.CC_STAT_HEIGHT])
            c = om.cell
            h, w = om.shape
            best_ev = evidence
            best = Region(
                strength=float(evidence),
                area_frac=cells / total,
                bbox=(x0 * c, y0 * c, min(w, (x0 + bw + 1) * c), min(h, (y0 + bh + 1) * c)),
                n_cells=cells,
            )
    return best
