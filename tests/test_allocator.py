"""The allocator helpers: freed heap memory can be handed back to the system."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = r"""
import numpy as np
from antifake.allocator import release_free_memory, tune_allocator

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20

assert tune_allocator()
# 600 arrays of 1 MiB (under the tuned 16 MiB mmap threshold: heap memory), each followed
# by a small survivor so the heap cannot simply shrink from the top when they are freed
big, small = [], []
for i in range(600):
    big.append(np.ones(1 << 18, np.float32))
    small.append(np.ones(16, np.float32))
before = rss_mb()
big.clear()
kept = rss_mb()
assert release_free_memory()
after = rss_mb()
print(round(before), round(kept), round(after))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_release_free_memory_hands_freed_heap_pages_back() -> None:
    """Freed megabyte arrays stay resident under the tuned allocator until
    :func:`release_free_memory` trims the heap (what the speech training does after it
    drops its decoded waves)."""
    src = Path(__file__).resolve().parents[1] / "src"
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          env={"PYTHONPATH": str(src), "ANTIFAKE_MALLOC_TUNING": "1"},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    before, kept, after = (float(v) for v in done.stdout.split())
    assert kept > before - 100  # freeing alone kept most of the 600 MiB resident
    assert after < kept - 400  # the trim gave it back
