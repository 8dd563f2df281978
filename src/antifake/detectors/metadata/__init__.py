"""Metadata detector: generator traces in EXIF/XMP/IPTC/PNG text/container tags."""

from antifake.detectors.metadata.detector import MetadataDetector

__all__ = ["MetadataDetector"]
