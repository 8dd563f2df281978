"""Format groups of media files: container (GIF, JPEG, PNG, WebP, other) and resolution band.

One definition for training and inference: the benchmark reports real-media false-positive
rates per group (a detector that learned "GIF means AI" flags every real GIF), training fits
an operating point per group, and the fusion judges a file against its own groups' lines.
"""

from __future__ import annotations

CONTAINER_GROUPS = {".gif": "GIF", ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG",
                    ".webp": "WebP"}
RESOLUTION_BANDS = ((256, "<=256 px"), (480, "257-480 px"), (719, "481-719 px"))
TOP_BAND = ">=720 px"
GROUP_ORDER = ("GIF", "JPEG", "PNG", "WebP", "other image", "video file", "<=256 px",
               "257-480 px", "481-719 px", TOP_BAND)


def container_group_of(container: str, media_type: str) -> str:
    """The group of a container name (``gif``, ``jpeg``...: a file suffix or the format
    antifake sniffed from the bytes): ``GIF`` / ``JPEG`` / ``PNG`` / ``WebP``, else
    ``video file`` or ``other image``."""
    group = CONTAINER_GROUPS.get("." + container.lower().lstrip("."))
    if group:
        return group
    return "video file" if media_type == "video" else "other image"


def resolution_band(side: int | None) -> str | None:
    """The band of a picture's short side in pixels (None: unknown)."""
    if side is None:
        return None
    for limit, name in RESOLUTION_BANDS:
        if side <= limit:
            return name
    return TOP_BAND


def media_format_groups(container: str, media_type: str, width: int, height: int) -> list[str]:
    """Every format group of a picture or video: one container group, one resolution band
    when its size is known (none for audio)."""
    if media_type not in ("image", "video"):
        return []
    groups = [container_group_of(container, media_type)]
    band = resolution_band(min(width, height) if width > 0 and height > 0 else None)
    if band:
        groups.append(band)
    return groups
