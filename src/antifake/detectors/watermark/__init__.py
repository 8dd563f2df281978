"""Invisible-watermark detector (Stable Diffusion v1/v2 and SDXL dwtDct marks)."""

from antifake.detectors.watermark.detector import WatermarkDetector

__all__ = ["WatermarkDetector"]
