"""Per-key token buckets (request rate). Daily file quotas live in the database (store.py).

The buckets are in process memory: with several API processes behind a load balancer each
enforces the rate on its own share (documented in docs/scaling.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """``allow(key, rate, burst)`` -> (allowed, seconds until a token is available)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(
        self, key: str, rate_per_s: float, burst: int, cost: float = 1.0
    ) -> tuple[bool, float]:
        now = self._clock()
        burst = max(1, burst)
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            # A key stored before rates were validated: no refill, never an overflow.
            rate_per_s = 0.0
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = _Bucket(tokens=float(burst), updated=now)
            refill = (now - b.updated) * rate_per_s if rate_per_s else 0.0
            b.tokens = min(float(burst), b.tokens + refill)
            b.updated = now
            if b.tokens >= cost:
                b.tokens -= cost
                return True, 0.0
            wait = (cost - b.tokens) / rate_per_s if rate_per_s > 0 else math.inf
            return False, wait
