"""Exceptions raised by :class:`antifake.Client` / :class:`antifake.AsyncClient`."""

from __future__ import annotations


class AntifakeClientError(Exception):
    """Base class of every SDK error."""


class APIError(AntifakeClientError):
    """The server answered with an error: ``status``, ``code`` and ``message`` from its
    ``{"error": {"code", "message"}}`` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class AuthenticationError(APIError):
    """401: missing, wrong or revoked API key."""


class NotFoundError(APIError):
    """404: no such job (or it belongs to another key), or nothing to show."""


class RateLimitError(APIError):
    """429 after the retries were used up; ``retry_after`` is the server's hint (seconds)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


class APIConnectionError(AntifakeClientError):
    """The server could not be reached (after retries)."""


class JobTimeoutError(AntifakeClientError):
    """``wait_for_job`` gave up before the job finished."""

    def __init__(self, job_id: str, timeout_s: float) -> None:
        super().__init__(f"job {job_id} did not finish within {timeout_s:g} s")
        self.job_id, self.timeout_s = job_id, timeout_s
