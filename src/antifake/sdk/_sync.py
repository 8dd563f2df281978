"""Blocking client (httpx.Client transport over :mod:`antifake.sdk._core`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx

from antifake.sdk._core import Call, ClientCore, FileInput, WaitState
from antifake.sdk.errors import APIConnectionError, JobTimeoutError
from antifake.sdk.models import DetectionResult, Job, JobPage

T = TypeVar("T")


class Client:
    """Client of the antifake REST API.

    >>> with Client("http://127.0.0.1:8000", api_key="af_...") as c:   # doctest: +SKIP
    ...     print(c.detect("photo.jpg").verdict)
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, *,
                 timeout: float = 300.0, max_retries: int = 3,
                 http_client: httpx.Client | None = None) -> None:
        self._core = ClientCore(base_url, api_key, max_retries=max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(base_url=self._core.base_url, timeout=timeout)
        self._http.headers.update(self._core.default_headers())

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            request, opened = call.build(self._http)
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                delay = self._core.retry_delay(attempt, None)
                if delay is None:
                    raise APIConnectionError(f"{call.method} {call.path}: {exc!r}") from exc
            else:
                delay = self._core.retry_delay(attempt, response)
                if delay is None:
                    return call.parse(response)
            finally:
                for f in opened:
                    f.close()
            time.sleep(delay)
            attempt += 1

    def detect(self, file: FileInput, *, filename: str | None = None,
               detectors: Sequence[str] | str | None = None,
               sampling: str | None = None) -> DetectionResult:
        """Analyse one file synchronously (path, bytes, or (name, bytes))."""
        return self._send(self._core.detect(file, filename=filename, detectors=detectors,
                                            sampling=sampling))

    def submit_jobs(self, files: Sequence[FileInput], *,
                    detectors: Sequence[str] | str | None = None, sampling: str | None = None,
                    webhook_url: str | None = None) -> list[Job]:
        """Queue one job per file (retry-safe: the request carries an Idempotency-Key)."""
        return self._send(self._core.submit_jobs(files, detectors=detectors, sampling=sampling,
                                                 webhook_url=webhook_url))

    def submit_job(self, file: FileInput, **options: Any) -> Job:
        """Queue one file; see :meth:`submit_jobs` for the options."""
        return self.submit_jobs([file], **options)[0]

    def get_job(self, job_id: str) -> Job:
        return self._send(self._core.get_job(job_id))

    def wait_for_job(self, job_id: str, progress_callback: Callable[[Job], None] | None = None,
                     timeout: float | None = None, poll_interval: float = 0.25) -> Job:
        """Poll until the job succeeded or failed; ``progress_callback(job)`` on changes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        state = WaitState(poll_interval)
        while True:
            job = self.get_job(job_id)
            if progress_callback is not None and state.changed(job):
                progress_callback(job)
            if job.done:
                return job
            delay = state.next_delay()
            if deadline is not None and time.monotonic() + delay > deadline:
                raise JobTimeoutError(job_id, timeout or 0.0)
            time.sleep(delay)

    def heatmap_png(self, job_id: str, *, overlay: bool = True, detector: str | None = None,
                    opacity: float | None = None) -> bytes:
        return self._send(self._core.heatmap_png(job_id, overlay=overlay, detector=detector,
                                                 opacity=opacity))

    def list_jobs(self, *, limit: int = 50, cursor: str | None = None,
                  status: str | None = None) -> JobPage:
        """One page of your jobs, newest first; pass ``next_cursor`` as ``cursor``."""
        return self._send(self._core.list_jobs(limit=limit, cursor=cursor, status=status))

    def delete_job(self, job_id: str) -> None:
        """Delete a finished or queued job with its upload, result and heatmaps."""
        self._send(self._core.delete_job(job_id))

    def frame_png(self, job_id: str) -> bytes:
        return self._send(self._core.frame_png(job_id))

    def timeline_png(self, job_id: str) -> bytes:
        return self._send(self._core.timeline_png(job_id))

    def report(self, job_id: str, format: str = "html") -> bytes:  # noqa: A002
        """The report as HTML (UTF-8 bytes) or PDF."""
        return self._send(self._core.report(job_id, format))

    def me(self) -> dict[str, Any]:
        """The calling key's limits, usage and webhook secret."""
        return self._send(self._core.me())

    def health(self) -> dict[str, Any]:
        return self._send(self._core.health())
