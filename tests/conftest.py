"""Shared fixtures. Tests synthesise their own media (see tests/synth.py)."""

from __future__ import annotations

import sys
from pathlib import Path

# Make tests/synth.py and tests/*_support.py importable as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
