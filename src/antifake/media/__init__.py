"""Media ingestion: sniff the format from the bytes, enforce limits, decode as a stream."""

from antifake.media.open import open_media
from antifake.media.types import Frame, Media, MediaInfo, MediaType

__all__ = ["Frame", "Media", "MediaInfo", "MediaType", "open_media"]
