"""Temporal-consistency detector for video (importing registers it as ``temporal``)."""

from antifake.detectors.temporal.detector import TemporalConsistencyDetector

__all__ = ["TemporalConsistencyDetector"]
