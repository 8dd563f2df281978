"""Media ingestion: sniff the format from the bytes, enforce limits, decode as a stream."""

from antifake.media.types import Frame, Media, MediaInfo, MediaType

__all__ = ["Frame", "Media", "MediaInfo", "MediaType", "open_media"]


def open_media(path, limits=None):  # type: ignore[no-untyped-def]
    """Implemented in antifake.media.open (being written)."""
    from antifake.media.open import open_media as _open

    return _open(path, limits)
