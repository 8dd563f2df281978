"""Synthetic-speech detector (``synthetic_speech``); importing registers it."""

from antifake.detectors.synthetic_speech.detector import SyntheticSpeechDetector

__all__ = ["SyntheticSpeechDetector"]
