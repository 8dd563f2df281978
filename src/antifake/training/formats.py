"""Format groups of media files, for false-positive rates per format.

A detector that learned "GIF means AI" or "small means AI" flags every real GIF or
thumbnail; the benchmark therefore reports the real-media false-positive rate per group of
the *original* file (before any laundering): its container (GIF, JPEG, PNG, WebP, other
video) and its resolution band (short side <= 256 px, <= 480, <= 719, >= 720).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import av
from PIL import Image

from antifake.media.format_groups import (
    GROUP_ORDER,
    TOP_BAND,
    container_group_of,
    resolution_band,
)
from antifake.training.media_io import LAUNDER_SHORT_SIDE

__all__ = ["GROUP_ORDER", "TOP_BAND", "container_group", "format_groups", "scored_format_groups",
           "short_side"]


def container_group(path: Path, media_type: str) -> str:
    """``GIF`` / ``JPEG`` / ``PNG`` / ``WebP``, else ``video file`` or ``other image``."""
    return container_group_of(path.suffix.lower().lstrip("."), media_type)


@lru_cache(maxsize=8192)
def short_side(path: Path) -> int | None:
    """The short side of the file's first picture, from its header (None if unreadable)."""
    try:
        with Image.open(path) as im:
            return min(im.size)
    except Exception:  # noqa: BLE001 - not a still image: ask the video demuxer
        pass
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            return min(s.codec_context.width, s.codec_context.height) or None
    except Exception:  # noqa: BLE001 - unreadable: no resolution group
        return None


def format_groups(path: Path, media_type: str) -> list[str]:
    """Every format group ``path`` belongs to (one container group, one resolution band)."""
    groups = [container_group(path, media_type)]
    band = resolution_band(short_side(path))
    if band:
        groups.append(band)
    return groups


def scored_format_groups(path: Path, media_type: str, condition: str = "original") -> list[str]:
    """The format groups of ``path`` as the engine reads the file scored under
    ``condition`` (a :mod:`antifake.training.media_io` condition such as
    ``laundered+masked``), i.e. the groups whose lines judge it.

    :func:`format_groups` names the *published* file's format, which is what the
    false-positive tables report ("real GIFs, laundered"). The operating lines, though,
    must be fitted and applied on the groups the engine sees: a laundered GIF reaches a
    user as an H.264 MP4 (``video file``), and a laundered still as a JPEG (the outside
    evaluation's laundering; the training condition approximates it with a one-frame
    H.264 intra picture). Resolution follows laundering's cap (short side <= 720) and
    ``half``; other steps (masking, crops, the debias chain) keep the published groups.
    """
    steps = condition.split("+")
    if "laundered" not in steps and "half" not in steps:
        return format_groups(path, media_type)
    side = short_side(path)
    if "laundered" in steps:
        container = "video file" if media_type == "video" else "JPEG"
        side = min(side, LAUNDER_SHORT_SIDE) if side else side
    else:
        container = container_group(path, media_type)
    if side and "half" in steps:
        side = max(1, side // 2)
    groups = [container]
    band = resolution_band(side)
    if band:
        groups.append(band)
    return groups
