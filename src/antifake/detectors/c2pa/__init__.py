"""C2PA Content Credentials detector (registered as ``c2pa``)."""

from antifake.detectors.c2pa.detector import TRUST_ANCHORS_ENV, C2paDetector

__all__ = ["C2paDetector", "TRUST_ANCHORS_ENV"]
