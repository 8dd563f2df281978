"""Known invisible watermarks and a fast, bit-exact decoder for invisible-watermark's dwtDct.

The Stable Diffusion reference scripts and SDXL pipelines embed their marks with the
``invisible-watermark`` package (module ``imwatermark``), method ``dwtDct``. Its decoder
(``imwatermark.maxDct.EmbedMaxDct.decode``) does, for BGR uint8 input:

1. convert BGR -> YUV (OpenCV), crop to a multiple of 4 pixels;
2. for the U channel only (its default scales are ``[0, 36, 36]`` and it loops over the
   first two channels, so Y is skipped and V is never read), take the Haar DWT
   approximation band ``cA``;
3. split ``cA`` into 4x4 blocks in row-major order; block ``n`` carries bit ``n % L``;
   in each block find the largest-magnitude coefficient other than ``[0, 0]`` and read
   ``|v| mod 36 > 18`` as a 1 (no DCT is applied in this "matrix" variant);
4. average the readings of each bit over all its blocks; ``mean * 255 > 127`` -> 1.

Steps 1-3 do not depend on the message length ``L``, so :func:`block_readings` computes
them once, vectorised, and :func:`bits_for_length` groups them for any ``L``. The result is
bit-for-bit what ``WatermarkDecoder(...).decode(bgr, "dwtDct")`` returns (the tests check
this against the real package), several hundred times faster and without importing torch,
which ``imwatermark`` does at import time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

DWTDCT_SCALE = 36.0  # imwatermark's default scale for the U channel
DWTDCT_BLOCK = 4
MIN_PIXELS = 256 * 256  # imwatermark refuses smaller images (r * c < 256 * 256)

# Stability's generative-models, scripts/demo/streamlit_helpers.py and diffusers'
# StableDiffusionXLWatermarker: 48 bits, "chosen at random" (0xB3EC907BB19E).
SDXL_MESSAGE = 0b101100111110110010010000011110111011000110011110


def _bytes_to_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.uint8)


@dataclass(frozen=True)
class KnownMark:
    """One watermark message a generator is known to embed."""

    key: str
    bits: np.ndarray  # expected bits, uint8 0/1
    generator_name: str
    family: str
    source: str  # where the message is set, for the README and evidence

    @property
    def length(self) -> int:
        return int(self.bits.size)


KNOWN_MARKS: tuple[KnownMark, ...] = (
    KnownMark(
        key="sdxl",
        bits=np.array([int(b) for b in bin(SDXL_MESSAGE)[2:]], dtype=np.uint8),
        generator_name="Stable Diffusion (SDXL watermark)",
        family="stable_diffusion",
        source="Stability-AI/generative-models and diffusers StableDiffusionXLWatermarker",
    ),
    KnownMark(
        key="sd_v1",
        bits=_bytes_to_bits(b"StableDiffusionV1"),
        generator_name="Stable Diffusion (v1 reference-script watermark)",
        family="stable_diffusion",
        source='CompVis/stable-diffusion scripts/txt2img.py, bytes "StableDiffusionV1"',
    ),
    KnownMark(
        key="sd_v1_inpainting",
        bits=_bytes_to_bits(b"StableDiffusionV1-Inpainting"),
        generator_name="Stable Diffusion (v1 inpainting watermark)",
        family="stable_diffusion",
        source='runwayml/stable-diffusion inpainting scripts, bytes "StableDiffusionV1-Inpainting"',
    ),
    KnownMark(
        key="sd_v2",
        bits=_bytes_to_bits(b"SDV2"),
        generator_name="Stable Diffusion (v2 reference-script watermark)",
        family="stable_diffusion",
        source='Stability-AI/stablediffusion scripts/txt2img.py, bytes "SDV2"',
    ),
)


# pywt's Haar analysis low-pass filter (``pywt.Wavelet("haar").dec_lo``), in both precisions.
_HAAR_LO = 0.7071067811865476
_HAAR_LO_F32 = np.float32(_HAAR_LO)


def haar_approx(channel: np.ndarray) -> np.ndarray:
    """``pywt.dwt2(channel, "haar")[0]`` for an even-sized 2-D array, bit for bit (of each
    array of a stack: the last two axes are transformed).

    pywt computes each output as ``h * x[2i+1] + h * x[2i]`` (its downsampling convolution,
    filter length 2, no boundary extension on even sizes), along axis 0 and then axis 1, in
    float64 for integer input and float32 for float32 input. The same operations in numpy
    give the same rounding, without pywt's per-call overhead and its generic n-d loop.
    """
    h: np.floating[Any]
    if channel.dtype == np.float32:
        x, h = channel, _HAAR_LO_F32
    else:
        x, h = channel.astype(np.float64), np.float64(_HAAR_LO)
    rows = h * x[..., 1::2, :] + h * x[..., 0::2, :]
    return h * rows[..., 1::2] + h * rows[..., 0::2]


def block_grid(
    bgr: np.ndarray,
    float_domain: bool = False,
    scale: float = DWTDCT_SCALE,
    swap_rb: bool = False,
) -> np.ndarray:
    """Per-block 0/1 readings of the dwtDct decoder as a (rows, cols) grid of 8x8-pixel blocks.

    Same input and conventions as :func:`block_readings` (which is this grid, flattened in
    row-major order). Each reading depends only on its own 8x8 pixels, so the grid of a
    crop is a sub-grid of this one when the crop's origin is a multiple of 8 pixels and
    OpenCV's colour conversion treats its pixels the same way (see :func:`read_marks`).
    ``swap_rb=True`` reads ``bgr[:, :, ::-1]`` (the other channel order) without a copy of
    the image where that is exact.
    """
    # Both readings use whole 8x8 pixel blocks only, as the decoder's 4x4 DWT blocks do.
    if float_domain:
        return float_readings_from_sums(pixel_sums_2x2(bgr), swap_rb, scale)
    # For uint8 pixels OpenCV's RGB->YUV is exactly BGR->YUV of the flipped image.
    pixels = np.ascontiguousarray(bgr, dtype=np.uint8)
    yuv = cv2.cvtColor(pixels, cv2.COLOR_RGB2YUV if swap_rb else cv2.COLOR_BGR2YUV)
    return _uint8_readings(yuv[:, :, 1], scale)


# OpenCV's float BGR->YUV (imgproc color_yuv): Y = .299 R + .587 G + .114 B and
# U = (B - Y) * .492 + 0.5, with float32 constants.
_Y_FROM_RGB = tuple(float(np.float32(c)) for c in (0.299, 0.587, 0.114))
_U_FROM_B_MINUS_Y = float(np.float32(0.492))
_FLOAT_CHROMA_DELTA = 0.5


def pixel_sums_2x2(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel (B, G, R) sums of each 2x2 pixel square of the full 8x8 blocks."""
    b = DWTDCT_BLOCK
    h, w = bgr.shape[0] // (2 * b) * 2 * b, bgr.shape[1] // (2 * b) * 2 * b
    out = []
    for channel in cv2.split(np.ascontiguousarray(bgr[:h, :w, :3])):
        c = channel.astype(np.int16) if channel.dtype == np.uint8 else channel.astype(np.float64)
        out.append((c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2])
                   .astype(np.float64))
    return out[0], out[1], out[2]


def float_readings_from_sums(
    sums: tuple[np.ndarray, np.ndarray, np.ndarray], swap_rb: bool, scale: float = DWTDCT_SCALE
) -> np.ndarray:
    """Float-domain block readings from :func:`pixel_sums_2x2` (either channel order).

    U is affine in the pixels and the Haar approximation coefficient of a 2x2 is ``h**2``
    times its sum, so each coefficient is computed from the 2x2 channel sums, in float64,
    without a float copy of the image or its YUV. This equals OpenCV's float32 YUV
    followed by the float32 DWT up to their rounding (~1e-5); a reading can differ only
    for a coefficient that close to a multiple of ``scale / 2``.
    """
    blue, green, red = sums
    if swap_rb:
        blue, red = red, blue
    c_r, c_g, c_b = _Y_FROM_RGB
    luma = red * c_r + green * c_g + blue * c_b
    hh = np.float64(_HAAR_LO) * np.float64(_HAAR_LO)
    approx = ((blue - luma) * _U_FROM_B_MINUS_Y + 4 * _FLOAT_CHROMA_DELTA) * hh
    return _readings_from_approx(approx, scale)


def _block_max_but_first(x: np.ndarray) -> np.ndarray:
    """Per DWTDCT_BLOCK x DWTDCT_BLOCK block of ``x``, the largest value other than the
    block's [0, 0], as a (rows, cols) grid (15 strided maxima: no transposed copy)."""
    b = DWTDCT_BLOCK
    n_r, n_c = x.shape[0] // b, x.shape[1] // b
    x = x[: n_r * b, : n_c * b]
    out = x[0::b, 1::b].copy()
    for i in range(b):
        for j in range(b):
            if (i, j) not in ((0, 0), (0, 1)):
                np.maximum(out, x[i::b, j::b], out=out)
    return out


def _readings_from_approx(approx: np.ndarray, scale: float) -> np.ndarray:
    """Block readings from the Haar approximation band (any float dtype).

    The decoder takes the coefficient of largest magnitude other than the block's [0, 0]
    (argmax, first of ties) and reads ``|v| mod scale > scale / 2``; that only needs the
    largest magnitude itself.
    """
    values = _block_max_but_first(np.abs(approx))
    return (np.mod(values, scale) > 0.5 * scale).astype(np.float64)


def _uint8_readings(u: np.ndarray, scale: float) -> np.ndarray:
    """:func:`_readings_from_approx` of ``haar_approx(u)`` for a uint8 U plane, faster.

    A Haar approximation coefficient of 8-bit pixels is, up to pywt's float64 rounding
    (relative error ~1e-16, so below 1e-12 here), half the integer sum ``S`` of its 2x2
    pixels. A block's largest coefficient therefore comes from its largest ``S`` (a
    smaller ``S`` is at least 0.5 smaller), and its reading ``(S/2) mod scale >
    scale/2`` is the float one unless ``S/2`` lies on a reading boundary (a multiple of
    ``scale/2``), where the rounding decides. Those few blocks are recomputed exactly as
    pywt does; the rest never leave integers.
    """
    b = DWTDCT_BLOCK
    n_r, n_c = u.shape[0] // (2 * b), u.shape[1] // (2 * b)
    px = u[: n_r * 2 * b, : n_c * 2 * b].astype(np.int16)
    sums = px[0::2, 0::2] + px[1::2, 0::2] + px[0::2, 1::2] + px[1::2, 1::2]
    largest = _block_max_but_first(sums).astype(np.float64) * 0.5  # coefficients are >= 0
    rem = np.mod(largest, scale)
    readings = (rem > 0.5 * scale).astype(np.float64)
    tol = 1e-6
    edge = (np.abs(rem - 0.5 * scale) < tol) | (rem < tol) | (rem > scale - tol)
    if edge.any():
        rr, cc = np.nonzero(edge)
        tiles = u[: n_r * 2 * b, : n_c * 2 * b].reshape(n_r, 2 * b, n_c, 2 * b)[rr, :, cc, :]
        approx = haar_approx(tiles)  # (n, b, b), pywt's rounding
        values = np.abs(approx.reshape(len(rr), b * b)[:, 1:]).max(axis=1)
        readings[rr, cc] = (np.mod(values, scale) > 0.5 * scale).astype(np.float64)
    return readings


def block_readings(
    bgr: np.ndarray, float_domain: bool = False, scale: float = DWTDCT_SCALE
) -> np.ndarray:
    """Per-block 0/1 readings of imwatermark's dwtDct decoder, in embedding order.

    ``bgr`` is HxWx3 uint8 in OpenCV (BGR) channel order, at least 256x256 pixels in area.
    ``float_domain=False`` is exactly imwatermark's decoder (uint8 YUV, chroma offset 128).
    ``float_domain=True`` reads the mark the way it was written by generators that hand
    the encoder float32 pixels in [0, 255] (diffusers' SDXL watermarker, Stability's
    generative-models): OpenCV's float YUV has chroma offset 0.5, not 128, so the encoder
    quantised ``|U_float|`` and the uint8 decoder, which sees ``U_float + 127.5``, flips
    every block whose chosen coefficient was negative.
    """
    return block_grid(bgr, float_domain=float_domain, scale=scale).ravel()


@functools.lru_cache(maxsize=64)
def _bit_positions(n_blocks: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Which bit each of ``n_blocks`` blocks carries, and how many blocks carry each bit
    (at least 1, so a mean is defined); shared by every read of the same size (read-only)."""
    idx = np.arange(n_blocks) % length
    counts = np.maximum(np.bincount(idx, minlength=length), 1)
    idx.flags.writeable = False
    counts.flags.writeable = False
    return idx, counts


def bits_for_length(readings: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoded bits and per-bit mean reading for a message of ``length`` bits."""
    idx, counts = _bit_positions(readings.size, length)
    sums = np.bincount(idx, weights=readings, minlength=length)
    means = sums / counts
    return (means * 255 > 127).astype(np.uint8), means
