"""Detector for the invisible watermarks of Stable Diffusion reference scripts and SDXL."""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from antifake.config import FrameSampling
from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.detectors.watermark.marks import (
    KNOWN_MARKS,
    MIN_PIXELS,
    KnownMark,
    bits_for_length,
    block_grid,
    float_readings_from_sums,
    pixel_sums_2x2,
)
from antifake.media import orientation
from antifake.media.types import Media, MediaType
from antifake.results import DetectorKind, DetectorResult, GeneratorGuess

FOUND_SCORE = 0.97
# Per (mark, channel order, tile) test, the false-positive probability we accept when the
# decoded bits are random (what an unmarked image gives): see README "Thresholds".
NULL_FALSE_POSITIVE = 1e-5
# Generation sizes: a grid of samples (the reference scripts' "merged" grids) is decoded
# tile by tile, because each sample was marked on its own.
TILE_SIZES = (512, 768, 1024)  # multiples of 8: tiles read a sub-grid (see read_marks)
MAX_TILES = 16
VIDEO_FRAMES = 4

# How the generator handed pixels to the encoder, which expects OpenCV BGR order.
# "bgr": converted RGB -> BGR first (CompVis/Stability scripts, current diffusers);
# "rgb": passed RGB as if it were BGR (older diffusers SDXL watermarker and its forks).
CHANNEL_ORDERS = ("bgr", "rgb")
# Pixel domain the encoder worked in: "uint8" (CompVis/Stability v1/v2 scripts mark the
# PIL image) or "float" (SDXL watermarkers mark float32 [0, 255]); see block_readings.
DOMAINS = ("uint8", "float")


@functools.lru_cache(maxsize=1024)
def _binomial_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2): chance of <= k errors among n random bits."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n


@functools.lru_cache(maxsize=64)
def max_bit_errors(length: int, alpha: float = NULL_FALSE_POSITIVE) -> int:
    """The most bit errors still called a match for a ``length``-bit message.

    The largest ``k`` with P(Binomial(length, 1/2) <= k) <= ``alpha``: 4/32, 9/48, 42/136
    and 79/224 for the known marks at the default alpha.
    """
    k = -1
    while k + 1 <= length and _binomial_cdf(k + 1, length) <= alpha:
        k += 1
    return k


@dataclass(frozen=True)
class MarkReading:
    """One decode attempt of one mark."""

    mark: KnownMark
    order: str
    domain: str
    region: str  # "full" or "tile r,c @ size"
    frame_index: int
    bit_errors: int
    ber: float
    max_errors: int

    @property
    def found(self) -> bool:
        return self.bit_errors <= self.max_errors

    @property
    def null_probability(self) -> float:
        """Chance that random bits match this well (binomial tail)."""
        return _binomial_cdf(self.bit_errors, self.mark.length)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mark": self.mark.key,
            "channel_order": self.order,
            "pixel_domain": self.domain,
            "region": self.region,
            "frame_index": self.frame_index,
            "bits": self.mark.length,
            "bit_errors": self.bit_errors,
            "ber": round(self.ber, 4),
            "max_bit_errors": self.max_errors,
            "null_probability": float(f"{self.null_probability:.3g}"),
            "found": self.found,
        }


def _regions(height: int, width: int) -> list[tuple[str, slice, slice]]:
    """The whole image, plus the tiles of a grid of generation-sized samples."""
    out = [("full", slice(0, height), slice(0, width))]
    for size in TILE_SIZES:
        n_r, n_c = height // size, width // size
        is_grid = height % size == 0 and width % size == 0 and n_r * n_c > 1
        if is_grid and n_r * n_c <= MAX_TILES:
            for r in range(n_r):
                for c in range(n_c):
                    out.append(
                        (
                            f"tile {r},{c} @ {size}",
                            slice(r * size, (r + 1) * size),
                            slice(c * size, (c + 1) * size),
                        )
                    )
    return out


def read_marks(rgb: np.ndarray, frame_index: int = 0) -> list[MarkReading]:
    """Decode every known mark, in both channel orders and pixel domains, on the image and
    on its grid tiles.

    The colour conversion, DWT and block readings are computed once per (order, domain)
    on the whole image and tiles read a sub-grid of them: each 4x4 block of the DWT
    approximation band is one 8x8 block of pixels and every step is local to it, so for a
    tile whose origin is a multiple of 8 pixels (every tile of TILE_SIZES) the readings are
    bit for bit those of decoding the cropped tile (OpenCV's uint8 YUV is per pixel; the
    float domain is computed from 2x2 sums, see :func:`float_readings_from_sums`; tested
    in tests/test_watermark_tiles_exact.py). Readings come out in region, order, domain,
    mark order, as the region-by-region decode.
    """
    readings: list[MarkReading] = []
    height, width = rgb.shape[:2]
    regions = [
        (region, rows, cols)
        for region, rows, cols in _regions(height, width)
        if (rows.stop - rows.start) * (cols.stop - cols.start) >= MIN_PIXELS
    ]
    if not regions:
        return readings
    variants = [(o, d) for o in CHANNEL_ORDERS for d in DOMAINS]
    # Exactly what block_readings gets for the whole image in each variant: "bgr" means the
    # generator flipped RGB -> BGR before the encoder (block_grid swaps R and B itself).
    # The float-domain readings of both orders come from the same 2x2 channel sums.
    sums = pixel_sums_2x2(rgb)
    grids = {
        (order, domain): (
            float_readings_from_sums(sums, swap_rb=order == "bgr")
            if domain == "float"
            else block_grid(rgb, swap_rb=order == "bgr")
        )
        for order, domain in variants
    }
    for region, rows, cols in regions:
        n_r, n_c = (rows.stop - rows.start) // 8, (cols.stop - cols.start) // 8
        r0, c0 = rows.start // 8, cols.start // 8
        for order, domain in variants:
            blocks = grids[(order, domain)][r0 : r0 + n_r, c0 : c0 + n_c].ravel()
            for mark in KNOWN_MARKS:
                if blocks.size < mark.length:
                    continue
                bits, _ = bits_for_length(blocks, mark.length)
                errors = int(np.count_nonzero(bits != mark.bits))
                readings.append(
                    MarkReading(
                        mark=mark,
                        order=order,
                        domain=domain,
                        region=region,
                        frame_index=frame_index,
                        bit_errors=errors,
                        ber=errors / mark.length,
                        max_errors=max_bit_errors(mark.length),
                    )
                )
    return readings


@register_detector("watermark", description="Invisible SD / SDXL watermarks (dwtDct)")
class WatermarkDetector:
    """Finds the invisible-watermark (dwtDct) marks of Stable Diffusion v1/v2 and SDXL.

    A found mark is strong evidence (score 0.97) of a Stable Diffusion pipeline; no mark
    says nothing (score ``None``): most generators, and many SD front-ends, embed none,
    and the mark does not survive resizing or ordinary JPEG re-compression.
    """

    name: ClassVar[str] = "watermark"
    kind: ClassVar[DetectorKind] = "provenance"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "dwtdct-ber-1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        started = time.perf_counter()
        sampling: FrameSampling | None = None
        if media.info.media_type == "video":
            base = ctx.sampling
            cap = min(VIDEO_FRAMES, base.max_frames or VIDEO_FRAMES)
            sampling = FrameSampling(mode=base.mode, fps=base.fps, max_frames=cap)
        readings: list[MarkReading] = []
        frames_checked = 0
        too_small = 0
        for frame in media.frames(sampling):
            frames_checked += 1
            # Marks live in the pixels as stored, before any orientation tag was set.
            rgb = orientation.undo(np.asarray(frame.rgb), media.info.orientation)
            if rgb.shape[0] * rgb.shape[1] < MIN_PIXELS:
                too_small += 1
            else:
                readings.extend(read_marks(rgb, frame.index))
            if frames_checked >= VIDEO_FRAMES:
                break
        result = self._result(readings, frames_checked, too_small)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def _result(
        self, readings: list[MarkReading], frames_checked: int, too_small: int
    ) -> DetectorResult:
        details: dict[str, Any] = {"frames_checked": frames_checked}
        if not readings:
            why = "image smaller than 256x256 pixels" if too_small else "no frames decoded"
            details["skipped"] = why
            return DetectorResult(
                detector=self.name, score=None, summary=f"Not checked: {why}", details=details
            )
        found = [r for r in readings if r.found]
        # Best attempt per mark, for the report (lowest BER).
        best: dict[str, MarkReading] = {}
        for r in readings:
            if r.mark.key not in best or r.ber < best[r.mark.key].ber:
                best[r.mark.key] = r
        details["best_per_mark"] = [r.to_dict() for r in best.values()]
        if not found:
            lowest = min(best.values(), key=lambda r: r.ber)
            return DetectorResult(
                detector=self.name,
                score=None,
                summary=f"No known invisible watermark (lowest BER {lowest.ber:.2f}, "
                f"{lowest.mark.key})",
                details=details,
            )
        top = min(found, key=lambda r: r.null_probability)
        details["matches"] = [r.to_dict() for r in found]
        evidence = [
            f"{r.mark.generator_name}: dwtDct {r.mark.length}-bit message decoded with "
            f"{r.bit_errors} bit errors (BER {r.ber:.3f} <= {r.max_errors / r.mark.length:.3f}; "
            f"chance for random bits {r.null_probability:.1e}), {r.order} channel order, "
            f"{r.domain} domain, {r.region}, frame {r.frame_index}"
            for r in sorted(found, key=lambda r: r.null_probability)[:6]
        ]
        return DetectorResult(
            detector=self.name,
            score=FOUND_SCORE,
            summary=f"{top.mark.generator_name} found (BER {top.ber:.3f})",
            evidence=evidence,
            details=details,
            generator=GeneratorGuess(
                family=top.mark.family, probability=FOUND_SCORE, name=top.mark.generator_name
            ),
        )
