"""Process-wide tuning of glibc's allocator for the engine's large, short-lived arrays.

Every verdict allocates and frees arrays of megabytes (a 1024x1024 image: luma, residual
maps, YUV planes, model input). glibc serves allocations above its mmap threshold with
fresh ``mmap`` pages and trims freed heap tops, so each verdict pays thousands of page
faults for memory it just gave back - about 5,800 faults and 10 ms of a 60 ms verdict on
the benchmark machine (docs/benchmarks.md, "Whole-engine latency"). Keeping freed memory
for reuse removes them. Detector threads share two arenas, so their freed memory is
reused too (a per-thread arena would keep faulting).

The cost is memory kept mapped after an analysis: up to ``TRIM_THRESHOLD`` (32 MiB) of
free heap stays resident until it is reused. Arrays of ``MMAP_THRESHOLD`` (16 MiB) and
more still get their own mappings, returned when freed, so a very large file does not
leave a large heap behind (which, under the service's address-space cap, left no room to
analyse the next file when the thresholds were 64/128 MiB; tests/test_service_memory_cap.py).
Set ``ANTIFAKE_MALLOC_TUNING=0`` to leave the allocator alone. The CLI, the service's
analysis processes and the Celery worker call :func:`tune_allocator`; a program embedding
the engine may call it too.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

# glibc <malloc.h> parameter numbers
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

MMAP_THRESHOLD = 16 << 20  # allocations below this come from the (reused) heap
TRIM_THRESHOLD = 32 << 20  # free heap above this is returned to the system
ARENA_MAX = 2

_done: bool | None = None
_lock = threading.Lock()


def tune_allocator() -> bool:
    """Apply the settings above once per process; True when they are in effect.

    A no-op (False) off Linux/glibc or with ``ANTIFAKE_MALLOC_TUNING=0``.
    """
    global _done
    with _lock:
        if _done is not None:
            return _done
        _done = False
        if os.environ.get("ANTIFAKE_MALLOC_TUNING", "1").strip() == "0":
            return False
        if not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(None)
            mallopt = libc.mallopt
            gnu_get_libc_version = libc.gnu_get_libc_version  # glibc only (not musl)
        except (OSError, AttributeError):
            return False
        gnu_get_libc_version.restype = ctypes.c_char_p
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        applied = all(
            mallopt(param, value) == 1
            for param, value in (
                (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                (_M_ARENA_MAX, ARENA_MAX),
            )
        )
        if not applied:
            log.warning("glibc %s refused part of the allocator tuning",
                        gnu_get_libc_version().decode())
        _done = applied
        return applied


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (glibc ``malloc_trim(0)``); True when
    it ran. With the thresholds above, arrays of a few megabytes come from the heap, and a
    program that frees gigabytes of them (the speech training's decoded waves) keeps them
    resident unless trimmed. A no-op (False) off Linux/glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True
