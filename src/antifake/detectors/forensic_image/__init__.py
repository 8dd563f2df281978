"""Learned generator-trace detector (``forensic_image``); importing registers it."""

from antifake.detectors.forensic_image.detector import ForensicImageDetector

__all__ = ["ForensicImageDetector"]
