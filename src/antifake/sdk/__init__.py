"""Python SDK of the antifake service: :class:`Client` (blocking) and :class:`AsyncClient`.

Both share one sans-IO core (:mod:`antifake.sdk._core`) that builds the requests, applies
the retry policy (exponential backoff with jitter on 429/5xx/connection errors, honouring
``Retry-After``) and parses responses into the dataclasses of :mod:`antifake.sdk.models`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from antifake.sdk._async import AsyncClient
from antifake.sdk._sync import Client
from antifake.sdk.errors import (
    AntifakeClientError,
    APIConnectionError,
    APIError,
    AuthenticationError,
    JobTimeoutError,
    NotFoundError,
    RateLimitError,
)
from antifake.sdk.models import (
    DetectionResult,
    DetectorOutput,
    ErrorInfo,
    Evidence,
    Generator,
    Job,
    JobPage,
)


def verify_webhook(secret: str, timestamp: str, body: bytes, signature: str,
                   tolerance_s: float = 300.0) -> bool:
    """Check a webhook's ``X-Antifake-Signature`` (and that its timestamp is recent)."""
    try:
        if abs(time.time() - int(timestamp)) > tolerance_s:
            return False
    except ValueError:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


__all__ = [
    "APIConnectionError",
    "APIError",
    "AntifakeClientError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "DetectionResult",
    "DetectorOutput",
    "ErrorInfo",
    "Evidence",
    "Generator",
    "Job",
    "JobPage",
    "JobTimeoutError",
    "NotFoundError",
    "RateLimitError",
    "verify_webhook",
]
