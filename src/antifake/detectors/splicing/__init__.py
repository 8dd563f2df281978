"""Splicing (local noise inconsistency) detector; importing registers it as ``splicing``."""

from antifake.detectors.splicing.detector import SplicingDetector

__all__ = ["SplicingDetector"]
