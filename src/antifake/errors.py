"""Stable error codes.

Every failure a user can cause (bad file, limits exceeded, unknown detector) is raised as
:class:`AntifakeError` with one of the :class:`ErrorCode` values; the CLI and API report the
code and message instead of a traceback. Codes are part of the public contract: other tools
match on them, so never rename one.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Machine-readable error codes reported in the ``error.code`` field."""

    NOT_FOUND = "not_found"  # the path does not exist or is not a regular file
    EMPTY_FILE = "empty_file"  # zero bytes
    UNSUPPORTED_MEDIA = "unsupported_media"  # not an image/video format we handle
    CORRUPT_MEDIA = "corrupt_media"  # recognised format, but it cannot be decoded
    TOO_LARGE = "too_large"  # bytes, pixels, duration or frame count over the limit
    TIMEOUT = "timeout"  # analysis took longer than the configured limit
    INVALID_REQUEST = "invalid_request"  # bad options (unknown detector, bad sampling)
    INTERNAL_ERROR = "internal_error"  # a bug: reported, never swallowed silently


class AntifakeError(Exception):
    """An error with a stable :class:`ErrorCode` and a human-readable message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The ``error`` object of the JSON result."""
        return {"code": self.code.value, "message": self.message}

    def __repr__(self) -> str:
        return f"AntifakeError({self.code.value!r}, {self.message!r})"


def corrupt_media(what: str, exc: BaseException | None = None) -> AntifakeError:
    """A ``corrupt_media`` error saying ``what`` failed, with the decoder's reason (cut to
    300 characters: a library message can be long and echo file bytes)."""
    detail = f": {type(exc).__name__}: {str(exc)[:300]}" if exc is not None else ""
    return AntifakeError(ErrorCode.CORRUPT_MEDIA, f"{what}{detail}")
