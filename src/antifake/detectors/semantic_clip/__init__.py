"""Frozen-CLIP semantic detector (``semantic_clip``); importing registers it."""

from antifake.detectors.semantic_clip.detector import SemanticClipDetector

__all__ = ["SemanticClipDetector"]
