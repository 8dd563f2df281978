"""Shared set-up for the atheris harnesses in this directory.

The harnesses run the media layer under tighter :class:`~antifake.config.Limits` than the
defaults, so the fuzzer spends its time on parsing logic rather than on decoding a
legitimately huge (80 Mpx) image; the limits themselves are tested in tests/.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

# Fewer threads: the fuzzer is single-process and the CI box has 2 shared cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

FUZZ_LIMITS_KW = {
    "max_file_bytes": 4 * 1024 * 1024,
    "max_image_pixels": 4_000_000,
    "max_video_pixels": 1_000_000,
    "max_duration_s": 120.0,
    "max_frames": 600,
    "max_metadata_bytes": 256 * 1024,
    "timeout_s": 10.0,
}

_TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
SCRATCH = Path(tempfile.mkdtemp(prefix="antifake-fuzz-", dir=_TMP_ROOT))


def scratch_file(data: bytes, name: str = "input") -> Path:
    """Write ``data`` to the harness's scratch file (tmpfs when available)."""
    path = SCRATCH / name
    path.write_bytes(data)
    return path
