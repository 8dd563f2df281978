"""The sans-IO core shared by :class:`~antifake.sdk.Client` and :class:`~antifake.sdk.AsyncClient`.

It builds requests (:class:`Call`), decides about retries (:meth:`ClientCore.retry_delay`)
and turns responses into typed values or exceptions (:meth:`Call.parse`); it never does
I/O. The sync and async clients only loop "build -> send -> parse or wait and retry".
"""

from __future__ import annotations

import mimetypes
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import httpx

from antifake import __version__
from antifake.sdk.errors import APIError, AuthenticationError, NotFoundError, RateLimitError
from antifake.sdk.models import DetectionResult, Job, JobPage

T = TypeVar("T")

# A file to upload: a path, raw bytes (named "upload"), or (file name, bytes).
FileInput = str | Path | bytes | tuple[str, bytes]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Upload:
    filename: str
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def of(cls, src: FileInput, filename: str | None = None) -> Upload:
        if isinstance(src, bytes | bytearray):
            return cls(filename=filename or "upload", data=bytes(src))
        if isinstance(src, tuple):
            return cls(filename=filename or src[0], data=src[1])
        p = Path(src)
        if not p.is_file():
            raise FileNotFoundError(p)
        return cls(filename=filename or p.name, path=p)

    def open(self) -> tuple[str, IO[bytes] | bytes, str]:
        ctype = mimetypes.guess_type(self.filename)[0] or "application/octet-stream"
        if self.path is not None:
            return self.filename, open(self.path, "rb"), ctype  # noqa: SIM115 - closed by caller
        assert self.data is not None
        return self.filename, self.data, ctype


@dataclass(frozen=True)
class Call(Generic[T]):
    """One logical API call: rebuilt for every attempt (uploads are re-opened)."""

    method: str
    path: str
    parse_body: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    uploads: Sequence[tuple[str, Upload]] = ()
    headers: dict[str, str] = field(default_factory=dict)

    def build(
        self, client: httpx.Client | httpx.AsyncClient
    ) -> tuple[httpx.Request, list[IO[bytes]]]:
        opened: list[IO[bytes]] = []
        files = []
        for fieldname, up in self.uploads:
            name, content, ctype = up.open()
            if not isinstance(content, bytes):
                opened.append(content)
            files.append((fieldname, (name, content, ctype)))
        params = {k: v for k, v in (self.params or {}).items() if v is not None} or None
        request = client.build_request(
            self.method, self.path, params=params, data=self.form or None,
            files=files or None, headers=self.headers,
        )
        return request, opened

    def parse(self, response: httpx.Response) -> T:
        raise_for_error(response)
        return self.parse_body(response)


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}", response.text[:500]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("code", "")), str(err.get("message", ""))
    if isinstance(body, dict) and "detail" in body:
        return f"http_{response.status_code}", str(body["detail"])
    return f"http_{response.status_code}", response.text[:500]


def retry_after_s(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def raise_for_error(response: httpx.Response) -> None:
    """Raise the matching SDK exception for a non-2xx response."""
    status = response.status_code
    if status < 400:
        return
    code, message = _error_fields(response)
    if status == 401:
        raise AuthenticationError(status, code, message)
    if status == 404:
        raise NotFoundError(status, code, message)
    if status == 429:
        raise RateLimitError(status, code, message, retry_after_s(response))
    raise APIError(status, code, message)


def _json(response: httpx.Response) -> Any:
    return response.json()


def _bytes(response: httpx.Response) -> bytes:
    return response.content


class ClientCore:
    """Request builders + retry policy; holds no connection."""

    def __init__(self, base_url: str, api_key: str | None, max_retries: int = 3,
                 backoff_base_s: float = 0.5, backoff_max_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s

    def default_headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"antifake-python/{__version__}", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    # -- retry policy ------------------------------------------------------------------
    def retry_delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up.

        ``response`` None means a connection error/timeout. Exponential backoff with full
        jitter, but never shorter than the server's ``Retry-After``; a ``Retry-After``
        longer than ``backoff_max_s`` (a spent daily quota) is not worth waiting for.
        """
        if attempt >= self.max_retries:
            return None
        if response is not None and response.status_code not in RETRY_STATUSES:
            return None
        delay = random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2**attempt))
        if response is not None:
            hint = retry_after_s(response)
            if hint is not None:
                if hint > self.backoff_max_s:
                    return None
                delay = max(delay, hint)
        return delay

    # -- calls -------------------------------------------------------------------------
    @staticmethod
    def _options(detectors: Sequence[str] | str | None, sampling: str | None) -> dict[str, str]:
        form: dict[str, str] = {}
        if detectors:
            form["detectors"] = detectors if isinstance(detectors, str) else ",".join(detectors)
        if sampling:
            form["sampling"] = sampling
        return form

    def detect(self, file: FileInput, *, filename: str | None = None,
               detectors: Sequence[str] | str | None = None,
               sampling: str | None = None) -> Call[DetectionResult]:
        return Call("POST", "/v1/detect", lambda r: DetectionResult.parse(r.json()),
                    form=self._options(detectors, sampling),
                    uploads=[("file", Upload.of(file, filename))])

    def submit_jobs(self, files: Sequence[FileInput], *,
                    detectors: Sequence[str] | str | None = None, sampling: str | None = None,
                    webhook_url: str | None = None,
                    idempotency_key: str | None = None) -> Call[list[Job]]:
        form = self._options(detectors, sampling)
        if webhook_url:
            form["webhook_url"] = webhook_url
        # One key per logical submission makes retries after a lost response safe.
        key = idempotency_key or uuid.uuid4().hex
        return Call("POST", "/v1/jobs", lambda r: [Job.parse(j) for j in r.json()["jobs"]],
                    form=form, uploads=[("file", Upload.of(f)) for f in files],
                    headers={"Idempotency-Key": key})

    def get_job(self, job_id: str) -> Call[Job]:
        return Call("GET", f"/v1/jobs/{job_id}", lambda r: Job.parse(r.json()))

    def list_jobs(self, *, limit: int = 50, cursor: str | None = None,
                  status: str | None = None) -> Call[JobPage]:
        return Call("GET", "/v1/jobs", lambda r: JobPage.parse(r.json()),
                    params={"limit": limit, "cursor": cursor, "status": status})

    def delete_job(self, job_id: str) -> Call[None]:
        return Call("DELETE", f"/v1/jobs/{job_id}", lambda r: None)

    def heatmap_png(self, job_id: str, *, overlay: bool = True, detector: str | None = None,
                    opacity: float | None = None) -> Call[bytes]:
        return Call("GET", f"/v1/jobs/{job_id}/heatmap.png", _bytes,
                    params={"overlay": "1" if overlay else "0", "detector": detector,
                            "opacity": opacity})

    def frame_png(self, job_id: str) -> Call[bytes]:
        return Call("GET", f"/v1/jobs/{job_id}/frame.png", _bytes)

    def timeline_png(self, job_id: str) -> Call[bytes]:
        return Call("GET", f"/v1/jobs/{job_id}/timeline.png", _bytes)

    def report(self, job_id: str, format: str = "html") -> Call[bytes]:  # noqa: A002
        if format not in ("html", "pdf"):
            raise ValueError("format must be 'html' or 'pdf'")
        return Call("GET", f"/v1/jobs/{job_id}/report", _bytes, params={"format": format})

    def me(self) -> Call[dict[str, Any]]:
        return Call("GET", "/v1/me", _json)

    def health(self) -> Call[dict[str, Any]]:
        return Call("GET", "/healthz", _json)


class WaitState:
    """Polling schedule and change detection of ``wait_for_job`` (shared sync/async)."""

    def __init__(self, poll_interval_s: float, max_interval_s: float = 2.0) -> None:
        self.interval = poll_interval_s
        self.max_interval = max(max_interval_s, poll_interval_s)
        self._last: tuple[str, float] | None = None

    def changed(self, job: Job) -> bool:
        key = (job.status, job.progress)
        changed = key != self._last
        self._last = key
        return changed

    def next_delay(self) -> float:
        delay = self.interval
        self.interval = min(self.max_interval, self.interval * 1.5)
        return delay
