"""Detectors: one sub-package each, all behind :class:`antifake.detectors.base.Detector`."""

from antifake.detectors.base import AnalysisContext, Detector
from antifake.detectors.registry import (
    available_detectors,
    create_detector,
    default_detector_names,
    register_detector,
)

__all__ = [
    "AnalysisContext",
    "Detector",
    "available_detectors",
    "create_detector",
    "default_detector_names",
    "register_detector",
]
