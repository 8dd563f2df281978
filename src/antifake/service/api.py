"""The REST API (FastAPI). Thin: validation, auth, storage and dispatch; analysis happens in
worker processes (:mod:`antifake.service.worker`) or Celery workers.

Endpoints (OpenAPI at ``/docs``): ``POST /v1/detect``, ``POST /v1/jobs``,
``GET /v1/jobs/{id}`` (+ ``/frame.png``, ``/heatmap.png``, ``/timeline.png``, ``/report``),
``GET /v1/me``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``; the web page at ``/``.

There is deliberately no server-side URL fetching ("analyse this URL"): it would turn the
server into an SSRF proxy. Clients upload bytes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError as DBInterfaceError
from sqlalchemy.exc import OperationalError as DBOperationalError
from sqlalchemy.exc import TimeoutError as DBPoolTimeout
from starlette import formparsers as _starlette_formparsers
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from antifake import __version__
from antifake.config import FrameSampling
from antifake.errors import AntifakeError, ErrorCode
from antifake.service.analysis import (
    AnalysisOutcome,
    AnalysisTask,
    error_result,
    load_heatmaps,
    result_from_dict,
)
from antifake.service.auth import Authenticator, Principal, presented_key
from antifake.service.jobs import AnalysisAborted, job_to_json
from antifake.service.metrics import MetricsMiddleware, ServiceMetrics
from antifake.service.ratelimit import TokenBuckets
from antifake.service.settings import ServiceSettings
from antifake.service.store import (
    DuplicateIdempotencyKey,
    Job,
    JobStore,
    NewJob,
    new_job_id,
    utcnow,
)
from antifake.service.webhooks import WebhookURLError, validate_webhook_url

log = logging.getLogger(__name__)

UPLOAD_ROUTES = {("POST", "/v1/detect"), ("POST", "/v1/jobs")}

# Where multipart uploads spool once over 1 MiB: Starlette uses the process's TMPDIR, which
# filled up independently of the data dir and turned a full disk into a 400 "error
# parsing the body" (issue 11 item 10). The gate sets this per upload request to the
# service's own tmp dir (inside the data dir); see _spooled_file.
_SPOOL_DIR: ContextVar[str | None] = ContextVar("antifake_spool_dir", default=None)


def _spooled_file(max_size: int = 0, mode: str = "w+b", **kwargs: Any) -> Any:
    """Starlette's upload spool, in the service's tmp dir when the gate set one."""
    kwargs.setdefault("dir", _SPOOL_DIR.get())
    return SpooledTemporaryFile(max_size=max_size, mode=mode, **kwargs)


_starlette_formparsers.SpooledTemporaryFile = _spooled_file  # type: ignore[assignment,misc]
# Free space an upload needs beyond its own size before the body is read: it is spooled
# once and then copied into uploads/, so about twice its size, plus this margin.
_SPOOL_MARGIN = 256 * 1024
_CHUNK = 1024 * 1024
# The database is down/locked/unreachable (not a bug in a query): answered 503, retryable.
DB_UNAVAILABLE = (DBOperationalError, DBInterfaceError, DBPoolTimeout)
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _db_unavailable_response() -> JSONResponse:
    return _json_error(503, "unavailable", "the database is unavailable; retry shortly",
                       {"Retry-After": "5"})


class ServiceError(Exception):
    """Answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json_error(status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


@dataclass
class ServiceState:
    """Everything the handlers share; created by :func:`create_app`, started in lifespan."""

    settings: ServiceSettings
    store: JobStore
    auth: Authenticator
    metrics: ServiceMetrics
    buckets: TokenBuckets = field(default_factory=TokenBuckets)
    pool: Any = None  # AnalysisPool (local backend)
    runner: Any = None  # LocalJobRunner (local backend)
    sweeper: Any = None
    reaper: Any = None  # re-publishes stranded jobs (celery backend)
    outbox: Any = None  # re-delivers webhooks a crash interrupted
    celery: Any = None  # Celery app (celery backend)
    started_at: float = field(default_factory=time.time)
    pending_detect: int = 0  # synchronous detects in flight (event loop only: no lock)
    render_pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.render_pool = ThreadPoolExecutor(self.settings.render_concurrency,
                                              thread_name_prefix="antifake-render")

    def dispatch(self, jobs: list[Job]) -> None:
        """Hand freshly queued jobs to the workers."""
        if self.settings.queue_backend == "celery":
            from antifake.service.celery_app import publish_job

            for j in jobs:
                publish_job(self.celery, j.id)
        elif self.runner is not None:
            self.runner.wake()

    def workers_alive(self) -> tuple[bool, str]:
        if self.settings.queue_backend == "celery":
            from antifake.service.celery_app import workers_responding

            n = workers_responding(self.celery, timeout_s=1.0)
            return n > 0, f"{n} celery worker(s) answered ping"
        ok = self.runner is not None and self.runner.alive()
        return ok, "local analysis processes alive" if ok else "local workers not running"


# -- ASGI gate: auth, rate limit and streaming body limit, before any body is read ---------


class _BodyTooLarge(Exception):
    pass


SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)


def _with_security_headers(send: Send) -> Send:
    """``send`` that adds :data:`SECURITY_HEADERS` to every response it starts."""

    async def wrapped(message: Any) -> None:
        if message.get("type") == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


def _host_name(host: str) -> str:
    """The name part of a Host header (``[::1]:8080`` -> ``[::1]``, ``a.b:80`` -> ``a.b``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class GateMiddleware:
    """Authenticates and rate-limits ``/v1`` requests and caps request bodies.

    It runs before routing, so a refused client is answered before its upload is read.
    The size cap is checked against ``Content-Length`` first (immediate 413) and then
    counted while the body streams in: the first chunk past the limit aborts the request
    with 413, so neither Starlette nor the disk ever receives more than the limit.
    """

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app, self.state = app, state

    async def _principal_or_refuse(self, headers: dict[str, str], scope: Scope,
                                   receive: Receive, send: Send) -> Principal | None:
        """The request's principal, or None after answering 401 (bad key) or 503
        (database unavailable)."""
        try:
            principal = await self._authenticate(headers)
        except DB_UNAVAILABLE:
            log.warning("database unavailable while authenticating", exc_info=True)
            await _db_unavailable_response()(scope, receive, send)
            return None
        if principal is None:
            await _json_error(401, "unauthorized", "missing or invalid API key",
                              {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        return principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.state.settings
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        send = _with_security_headers(send)

        if settings.allowed_hosts is not None and (
                _host_name(headers.get("host", "")) not in settings.allowed_hosts):
            await _json_error(400, "invalid_request", "host not allowed")(scope, receive, send)
            return
        if (path == "/metrics" and settings.auth_required and not settings.metrics_public
                and await self._principal_or_refuse(headers, scope, receive, send) is None):
            return

        if path.startswith("/v1/"):
            principal = await self._principal_or_refuse(headers, scope, receive, send)
            if principal is None:
                return
            if principal.rate_limit_per_s is not None:
                ok, wait = self.state.buckets.allow(
                    principal.id, principal.rate_limit_per_s, principal.rate_limit_burst or 1)
                if not ok:
                    # A stored non-positive rate never refills (wait is inf): say one day
                    # rather than overflow int().
                    retry = max(1, int(min(wait, 86400.0) + 0.999))
                    await _json_error(429, "rate_limited",
                                      f"rate limit exceeded; retry in {retry} s",
                                      {"Retry-After": str(retry)})(scope, receive, send)
                    return
            scope.setdefault("state", {})["principal"] = principal

        upload = (method, path) in UPLOAD_ROUTES
        limit = settings.max_upload_bytes if upload else settings.max_small_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        if upload:
            _SPOOL_DIR.set(str(settings.tmp_dir))
            size = int(declared) if declared is not None and declared.isdigit() else limit
            if not _room_for(settings.tmp_dir, 2 * size + _SPOOL_MARGIN):
                log.error("upload refused before reading it: storage full in %s",
                          settings.tmp_dir)
                await _json_error(507, "insufficient_storage",
                                  "the server's storage is full; retry later")(
                    scope, receive, send)
                return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                # The handler turned our abort into some other error (FastAPI reports body
                # parsing failures as 400): answer 413 instead.
                if message["type"] == "http.response.start":
                    started = True
                    await self._too_large(scope, receive, send, limit)
                return
            if exceeded:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send, limit)

    async def _authenticate(self, headers: dict[str, str]) -> Principal | None:
        key = presented_key(headers)
        if key is None:
            return self.state.auth.authenticate(None)
        # A database read: keep it off the event loop.
        return await run_in_threadpool(self.state.auth.authenticate, key)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        await _json_error(413, "too_large", f"request body exceeds {limit} bytes",
                          {"Connection": "close"})(scope, receive, send)


# -- helpers ------------------------------------------------------------------------------


def _principal(request: Request) -> Principal:
    p = request.scope.get("state", {}).get("principal")
    if p is None:  # only reachable for routes outside /v1
        raise ServiceError(401, "unauthorized", "missing or invalid API key")
    return p


def _state(request: Request) -> ServiceState:
    return request.app.state.service


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def display_name(upload: UploadFile) -> str:
    """The client's file name, reduced to a base name (never used as a path)."""
    raw = (upload.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    return (_SAFE_NAME.sub("_", raw).strip() or "upload")[:200]


def parse_options(settings: ServiceSettings, detectors: str | None,
                  sampling: str | None) -> dict[str, Any]:
    """Validate request options now (400), not later in a worker."""
    opts: dict[str, Any] = {}
    if detectors:
        names = [d.strip() for d in detectors.split(",") if d.strip()]
        from antifake.detectors.registry import available_detectors

        known = available_detectors()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ServiceError(400, ErrorCode.INVALID_REQUEST.value,
                               f"unknown detector(s) {', '.join(unknown)}; "
                               f"available: {', '.join(known)}")
        opts["detectors"] = names
    if sampling:
        try:
            FrameSampling.parse(sampling)
        except AntifakeError as exc:
            raise ServiceError(400, exc.code.value, exc.message) from exc
        opts["sampling"] = sampling
    return opts


def _queue_check(state: ServiceState) -> dict[str, Any]:
    """Readiness of the queue: not ok when a job has waited longer than ``queue_stall_s``
    while no job started, progressed or finished (workers alive but stuck, e.g. on a slow
    webhook receiver before deliveries moved off the dispatcher: issue 11 item 1)."""
    s = state.settings
    stall_s = s.queue_stall_s if s.queue_stall_s is not None else 2 * s.job_timeout_s
    oldest, latest = state.store.queue_activity()
    if oldest is None:
        return {"ok": True, "detail": "no job waiting"}
    now = utcnow()
    waiting = (now - oldest).total_seconds()
    idle = (now - latest).total_seconds() if latest is not None else waiting
    if waiting > stall_s and idle > stall_s:
        return {"ok": False, "detail": f"stalled: a job has waited {waiting:.0f} s and no job "
                                       f"has moved for {idle:.0f} s (limit {stall_s:.0f} s)"}
    return {"ok": True, "detail": f"oldest queued job waiting {waiting:.0f} s"}


def _room_for(folder: Path, nbytes: int) -> bool:
    """Whether ``folder``'s file system has ``nbytes`` free (True when it cannot be told)."""
    try:
        return shutil.disk_usage(folder).free >= nbytes
    except OSError:
        return True


def _save_upload(upload: UploadFile, dest: Path) -> int:
    """Copy the (already size-capped) upload to ``dest``; returns its size.

    A full disk (or quota) is answered 507 ``insufficient_storage`` and leaves no partial
    file behind.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        upload.file.seek(0)
        with open(dest, "wb") as out:
            shutil.copyfileobj(upload.file, out, _CHUNK)
            return out.tell()
    except OSError as exc:
        dest.unlink(missing_ok=True)
        if exc.errno in _DISK_FULL_ERRNOS:
            log.error("upload refused, storage full: %s", exc)
            raise ServiceError(507, "insufficient_storage",
                               "the server's storage is full; retry later") from exc
        raise


def _charge_quota(state: ServiceState, principal: Principal, files: int) -> None:
    if principal.daily_quota is None:
        return
    if not state.store.consume_quota(principal.id, files, principal.daily_quota):
        raise ServiceError(429, "quota_exceeded",
                           f"daily quota of {principal.daily_quota} files reached",
                           {"Retry-After": "3600"})


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) from a ``next_cursor``; a malformed one is a 400."""
    try:
        created, job_id = cursor.split("|", 1)
        when = datetime.fromisoformat(created)
    except ValueError as exc:
        raise ServiceError(400, ErrorCode.INVALID_REQUEST.value, "malformed cursor") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when, job_id


def _owned_job(state: ServiceState, principal: Principal, job_id: str) -> Job:
    job = state.store.get_job(job_id, principal=principal.id)
    if job is None:  # also for other keys' jobs: don't reveal that they exist
        raise ServiceError(404, ErrorCode.NOT_FOUND.value, f"no job {job_id}")
    return job


T = TypeVar("T")


def _render(state: ServiceState, draw: Callable[[], T]) -> T:
    """Run ``draw`` (a picture or report: it decodes the upload in this process) on the
    service's ``render_concurrency`` rendering threads. Only those threads ever hold a
    decoded upload, so the API's memory is bounded by that many renders: spread over the
    request threads, 8 parallel heatmap.png of a 49 Mpx PNG took the API to 2977 MiB
    (issue 11 item 4), and a semaphore alone did not help (every request thread's malloc
    arena kept its peak). 503 + Retry-After when no thread frees up in ``render_wait_s``."""
    future = state.render_pool.submit(draw)
    try:
        return future.result(timeout=state.settings.render_wait_s)
    except FutureTimeout as exc:
        if future.cancel():  # still waiting for a thread: it will not run
            raise ServiceError(503, "busy", "too many pictures or reports being drawn; retry",
                               {"Retry-After": "2"}) from exc
        return future.result()  # it started meanwhile: let it finish


def _finished_result(state: ServiceState, job: Job) -> tuple[Any, str | None]:
    """(AnalysisResult with heatmaps, media path if still on disk) of a succeeded job."""
    if not job.done:
        raise ServiceError(409, "job_not_finished", f"job {job.id} is {job.status}")
    row = state.store.get_result(job.id)
    if row is None:
        raise ServiceError(404, "no_result", f"job {job.id} has no result")
    result = result_from_dict(row.result, load_heatmaps(row.heatmaps_path))
    media = job.upload_path if os.path.exists(job.upload_path) else None
    return result, media


def _report_filename(file_name: str, ext: str) -> str:
    stem = Path(file_name).stem or "report"
    return f"{_SAFE_NAME.sub('_', stem)}.antifake-report.{ext}"


# -- app factory ---------------------------------------------------------------------------


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the API. Workers/sweeper start with the app's lifespan (uvicorn or TestClient)."""
    settings = settings or ServiceSettings.from_env()
    settings.ensure_dirs()
    store = JobStore(settings.db_url)
    metrics = ServiceMetrics(store.queue_counts)
    state = ServiceState(settings=settings, store=store, auth=Authenticator(store, settings),
                         metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_start, state)
        try:
            yield
        finally:
            await run_in_threadpool(_stop, state)

    app = FastAPI(
        title="antifake", version=__version__, lifespan=lifespan,
        # The stock /docs and /redoc load their scripts from a CDN: blank offline, and
        # contrary to "nothing leaves this server". /docs is served below from the pinned
        # swagger-ui-bundle package instead; /redoc is off.
        docs_url=None, redoc_url=None,
        description="Detect AI-generated and AI-edited images, video and speech. "
                    "Authenticate with "
                    "`Authorization: Bearer <key>` (or `X-API-Key`). Errors are "
                    '`{"error": {"code", "message"}}`.',
    )
    app.state.service = state

    @app.exception_handler(ServiceError)
    async def _service_error(_req: Request, exc: ServiceError) -> JSONResponse:
        return _json_error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, ErrorCode.INVALID_REQUEST.value if exc.status_code < 500
            else ErrorCode.INTERNAL_ERROR.value)
        return _json_error(exc.status_code, code, str(exc.detail),
                           dict(exc.headers) if exc.headers else None)

    @app.exception_handler(DBOperationalError)
    @app.exception_handler(DBInterfaceError)
    @app.exception_handler(DBPoolTimeout)
    async def _db_error(_req: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return _db_unavailable_response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_req: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                 for e in exc.errors()]
        return _json_error(422, ErrorCode.INVALID_REQUEST.value, "; ".join(parts)[:1000])

    _add_routes(app, state)
    _add_offline_docs(app)
    app.add_middleware(GateMiddleware, state=state)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    web_dir = settings.web_dir or Path(__file__).resolve().parent.parent / "web"
    if web_dir.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=str(web_dir), html=True), name="web")
    return app


def _add_offline_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the ``swagger-ui-bundle`` package (its files served under
    ``/docs-assets``), so the API reference works on a machine without internet."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # a runtime install without it: say where the schema is
        @app.get("/docs", include_in_schema=False)
        def docs_unavailable() -> HTMLResponse:
            return HTMLResponse("<!DOCTYPE html><title>antifake API</title><p>The interactive "
                                "API reference needs the swagger-ui-bundle package; the "
                                'OpenAPI schema is at <a href="/openapi.json">/openapi.json'
                                "</a>.</p>")
        return
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="antifake API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png")


def _start(state: ServiceState) -> None:
    s = state.settings
    from antifake.service.worker import Sweeper

    if s.queue_backend == "celery":
        from antifake.service.celery_app import create_celery_app, republish_stranded
        from antifake.service.worker import Periodic

        celery = state.celery = create_celery_app(s, register_task=False)
        republish_stranded(celery, state.store, include_queued=True)
        state.reaper = Periodic(
            s.lease_s, lambda: republish_stranded(celery, state.store, include_queued=False),
            "antifake-reaper")
        state.reaper.start()
    else:
        from antifake.service.worker import AnalysisPool, LocalJobRunner

        state.pool = AnalysisPool(
            s.workers, on_restart=lambda reason: state.metrics.worker_restarts.labels(reason).inc(),
            memory_mb=s.analysis_memory_mb)
        state.runner = LocalJobRunner(s, state.store, state.pool,
                                      on_result=state.metrics.observe_result)
        state.runner.start()
    state.sweeper = Sweeper(s, state.store)
    state.sweeper.start()
    from antifake.service.jobs import redeliver_pending_webhooks
    from antifake.service.worker import Periodic

    # Webhook outbox: deliveries a crash interrupted are sent again (at least once).
    # Grace: longer than the slowest normal delivery (3 attempts of 3 x the timeout).
    grace = max(60.0, 10 * s.webhook_timeout_s + 15)
    state.outbox = Periodic(60.0, lambda: redeliver_pending_webhooks(state.store, s, grace),
                            "antifake-webhook-outbox")
    state.outbox.start()


def _stop(state: ServiceState) -> None:
    for periodic in (state.sweeper, state.reaper, state.outbox):
        if periodic is not None:
            periodic.stop()
    if state.runner is not None:
        state.runner.stop()
    if state.pool is not None:
        state.pool.close()
    state.render_pool.shutdown(wait=False, cancel_futures=True)
    state.store.dispose()


def _add_routes(app: FastAPI, state: ServiceState) -> None:  # noqa: C901 - route table
    settings = state.settings

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        """Readiness: the database answers and workers are alive."""
        checks: dict[str, Any] = {}
        try:
            checks["database"] = {"ok": state.store.ping()}
        except Exception as exc:
            checks["database"] = {"ok": False, "detail": type(exc).__name__}
        try:
            ok, detail = state.workers_alive()
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        checks["workers"] = {"ok": ok, "detail": detail}
        try:
            checks["queue"] = _queue_check(state)
        except Exception as exc:
            checks["queue"] = {"ok": False, "detail": type(exc).__name__}
        ready = all(c["ok"] for c in checks.values())
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                            status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(state.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/me", tags=["keys"])
    def me(request: Request) -> dict[str, Any]:
        """The calling key: its limits, today's usage and its webhook signing secret."""
        p = _principal(request)
        return {
            "key_id": p.id, "name": p.name, "webhook_secret": p.webhook_secret,
            "rate_limit_per_s": p.rate_limit_per_s, "rate_limit_burst": p.rate_limit_burst,
            "daily_quota": p.daily_quota, "used_today": state.store.usage_today(p.id),
        }

    @app.post("/v1/detect", tags=["detect"])
    async def detect(
        request: Request,
        file: Annotated[UploadFile, File(description="The image, video or audio file")],
        detectors: Annotated[str | None, Form(description="Comma-separated names")] = None,
        sampling: Annotated[str | None, Form(description="all | keyframes | fps=N[,max=K]")]
        = None,
    ) -> JSONResponse:
        """Analyse one file synchronously; the body is the CLI's ``--json`` object.

        A file that cannot be analysed (corrupt, unsupported, too large, timed out) still
        answers 200 with ``error`` set in the result, exactly like the CLI. Heatmap images
        need a job (``POST /v1/jobs``).
        """
        principal = _principal(request)
        opts = await run_in_threadpool(parse_options, settings, detectors, sampling)
        await run_in_threadpool(_charge_quota, state, principal, 1)
        name = display_name(file)
        tmp = settings.tmp_dir / f"detect-{uuid.uuid4().hex}"
        try:
            await run_in_threadpool(_save_upload, file, tmp)
            result = await _detect_now(state, principal, tmp, name, opts)
        finally:
            tmp.unlink(missing_ok=True)
        return JSONResponse(result)

    @app.post("/v1/jobs", status_code=202, tags=["jobs"])
    async def submit_jobs(
        request: Request,
        file: Annotated[list[UploadFile] | None, File(description="One or more files")] = None,
        files: Annotated[list[UploadFile] | None, File(description="Alias of `file`")] = None,
        detectors: Annotated[str | None, Form()] = None,
        sampling: Annotated[str | None, Form()] = None,
        webhook_url: Annotated[str | None, Form(description="POSTed when each job ends")]
        = None,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> JSONResponse:
        """Queue one job per uploaded file. Returns ``{"jobs": [...]}``; with exactly one
        file the job's own fields are also at the top level (what the web page reads).

        With an ``Idempotency-Key`` header a retried request returns the jobs created by
        the first one instead of creating new ones.
        """
        principal = _principal(request)
        uploads = [*(file or []), *(files or [])]
        if not uploads:
            raise ServiceError(400, ErrorCode.INVALID_REQUEST.value, "no file uploaded")
        if len(uploads) > settings.max_files_per_job_request:
            raise ServiceError(400, ErrorCode.INVALID_REQUEST.value,
                               f"at most {settings.max_files_per_job_request} files per request")
        if idempotency_key:
            previous = await run_in_threadpool(
                state.store.find_by_idempotency_key, principal.id, idempotency_key)
            if previous:
                return JSONResponse(_jobs_response(state, previous), status_code=200)
        opts = await run_in_threadpool(parse_options, settings, detectors, sampling)
        if webhook_url:
            try:
                await run_in_threadpool(validate_webhook_url, webhook_url,
                                        settings.webhook_allow_private)
            except WebhookURLError as exc:
                raise ServiceError(400, ErrorCode.INVALID_REQUEST.value, str(exc)) from exc
        await run_in_threadpool(_charge_quota, state, principal, len(uploads))
        new: list[NewJob] = []
        try:
            for up in uploads:
                job_id = new_job_id()
                dest = settings.uploads_dir / job_id[:2] / f"{job_id}.bin"
                new.append(NewJob(id=job_id, file_name=display_name(up), upload_path=str(dest)))
                await run_in_threadpool(_save_upload, up, dest)
            jobs = await run_in_threadpool(
                state.store.create_jobs, principal.id, new, opts, webhook_url,
                settings.max_attempts, idempotency_key)
        except DuplicateIdempotencyKey:
            # A concurrent request with the same key won: answer with its jobs, drop ours
            # and give back the quota charged for them.
            for nj in new:
                Path(nj.upload_path).unlink(missing_ok=True)
            if principal.daily_quota is not None:
                await run_in_threadpool(state.store.consume_quota, principal.id,
                                        -len(uploads), None)
            previous = await run_in_threadpool(
                state.store.find_by_idempotency_key, principal.id, idempotency_key or "")
            return JSONResponse(_jobs_response(state, previous), status_code=200)
        except BaseException:
            # No job row points at these files: delete them now rather than orphan them.
            for nj in new:
                Path(nj.upload_path).unlink(missing_ok=True)
            raise
        await run_in_threadpool(state.dispatch, jobs)
        return JSONResponse(_jobs_response(state, jobs), status_code=202)

    @app.get("/v1/jobs", tags=["jobs"])
    def list_jobs(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=200, description="Jobs per page")] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")]
        = None,
        status: Annotated[Literal["queued", "running", "succeeded", "failed"] | None,
                          Query(description="Only jobs in this state")] = None,
    ) -> dict[str, Any]:
        """Your jobs, newest first (without results: fetch one with ``GET /v1/jobs/{id}``).
        Pass ``next_cursor`` back as ``cursor`` for the next page; it is null on the last."""
        after = _parse_cursor(cursor) if cursor else None
        jobs = state.store.list_jobs(_principal(request).id, limit + 1, after, status)
        page = jobs[:limit]
        next_cursor = (f"{page[-1].created_at.isoformat()}|{page[-1].id}"
                       if len(jobs) > limit else None)
        return {"jobs": [job_to_json(j, None, include_result=False) for j in page],
                "next_cursor": next_cursor}

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"], status_code=204,
                response_class=Response)
    def delete_job(request: Request, job_id: str) -> Response:
        """Delete a job with its upload, result and heatmaps (409 while it is running:
        retry when it has finished)."""
        principal = _principal(request)
        found = state.store.delete_job(job_id, principal.id)
        if found is None:
            raise ServiceError(404, ErrorCode.NOT_FOUND.value, f"no job {job_id}")
        if found[0] == "running":
            raise ServiceError(409, "job_running",
                               f"job {job_id} is running; delete it when it has finished")
        for path in (found[1], found[2]):
            if path:
                p = Path(path)
                try:
                    shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
                except OSError:
                    log.warning("could not delete %s of job %s", p, job_id)
        return Response(status_code=204)

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    def get_job(request: Request, job_id: str) -> dict[str, Any]:
        """Status, progress in [0, 1] and, once finished, the result."""
        job = _owned_job(state, _principal(request), job_id)
        return job_to_json(job, state.store.get_result(job.id) if job.done else None)

    @app.get("/v1/jobs/{job_id}/frame.png", tags=["jobs"], response_class=Response)
    def frame_png(request: Request, job_id: str,
                  detector: str | None = None) -> Response:
        """The analysed image (or the video frame of the heatmap) at display size."""
        from antifake.report import render_frame_png

        result, media = _finished_result(state, _owned_job(state, _principal(request), job_id))
        png = _render(state, lambda: render_frame_png(
            result, media, detector, state.settings.limits()) if media else None)
        if png is None:
            raise ServiceError(404, "no_frame", "the uploaded file is no longer available")
        return Response(png, media_type="image/png")

    @app.get("/v1/jobs/{job_id}/heatmap.png", tags=["jobs"], response_class=Response)
    def heatmap_png(
        request: Request, job_id: str, overlay: bool = True, detector: str | None = None,
        opacity: Annotated[float, Query(ge=0.0, le=1.0)] = 0.5,
    ) -> Response:
        """The heatmap blended over the frame (``overlay=1``) or alone as RGBA (``0``)."""
        from antifake.report import render_heatmap_only_png, render_heatmap_png

        result, media = _finished_result(state, _owned_job(state, _principal(request), job_id))
        if overlay and media:
            png = _render(state, lambda: render_heatmap_png(
                result, media, detector=detector, opacity=opacity,
                limits=state.settings.limits()))
        else:
            png = _render(state, lambda: render_heatmap_only_png(result, detector=detector))
        if png is None:
            raise ServiceError(404, "no_heatmap", "no detector produced a heatmap for this file")
        return Response(png, media_type="image/png")

    @app.get("/v1/jobs/{job_id}/timeline.png", tags=["jobs"], response_class=Response)
    def timeline_png(request: Request, job_id: str) -> Response:
        """Per-frame scores of a video (404 for images)."""
        from antifake.report import render_timeline_png

        result, _ = _finished_result(state, _owned_job(state, _principal(request), job_id))
        png = _render(state, lambda: render_timeline_png(result))
        if png is None:
            raise ServiceError(404, "no_timeline", "no per-frame timeline (not a video?)")
        return Response(png, media_type="image/png")

    @app.get("/v1/jobs/{job_id}/report", tags=["jobs"], response_class=Response)
    def report(request: Request, job_id: str,
               format: Literal["html", "pdf"] = "html") -> Response:  # noqa: A002 - API name
        """The forensic report as self-contained HTML, or PDF with ``?format=pdf``."""
        from antifake.report import render_report_html, render_report_pdf

        job = _owned_job(state, _principal(request), job_id)
        result, media = _finished_result(state, job)
        limits = state.settings.limits()
        if format == "pdf":
            body: bytes = _render(state, lambda: render_report_pdf(result, media, limits))
            media_type = "application/pdf"
        else:
            body = _render(state, lambda: render_report_html(result, media, limits).encode())
            media_type = "text/html; charset=utf-8"
        fname = _report_filename(job.file_name, format)
        return Response(body, media_type=media_type,
                        headers={"Content-Disposition": f'attachment; filename="{fname}"'})


def _jobs_response(state: ServiceState, jobs: list[Job]) -> dict[str, Any]:
    views = [job_to_json(j, None) for j in jobs]
    out: dict[str, Any] = dict(views[0]) if len(views) == 1 else {}
    out["jobs"] = views
    return out


async def _detect_now(state: ServiceState, principal: Principal, path: Path, name: str,
                      opts: dict[str, Any]) -> dict[str, Any]:
    s = state.settings
    if s.queue_backend == "celery":
        return await _detect_via_queue(state, principal, path, name, opts)
    if state.pending_detect >= s.max_pending_detect:
        # Backpressure: every waiting detect holds a server thread; beyond this, shed load.
        raise ServiceError(503, "busy", "all analysis processes are busy; retry shortly",
                           {"Retry-After": "1"})
    task = AnalysisTask(
        path=str(path), display_name=name,
        detectors=tuple(opts["detectors"]) if opts.get("detectors") else s.detectors,
        sampling=opts.get("sampling") or s.default_sampling, want_heatmaps=False,
        limits=s.limits(), plugin_modules=s.plugin_modules,
    )
    state.pending_detect += 1
    try:
        outcome: AnalysisOutcome = await run_in_threadpool(
            state.pool.analyze, task, s.job_timeout_s)
    except AnalysisAborted as exc:
        result = error_result(name, {"code": exc.code, "message": exc.message})
    else:
        result = outcome.result
    finally:
        state.pending_detect -= 1
    state.metrics.observe_result(result)
    return result


async def _detect_via_queue(state: ServiceState, principal: Principal, path: Path, name: str,
                            opts: dict[str, Any]) -> dict[str, Any]:
    """Celery mode: a synchronous detect is a job we wait for (the API runs no analyses)."""
    s = state.settings
    job_id = new_job_id()
    dest = s.uploads_dir / job_id[:2] / f"{job_id}.bin"
    dest.parent.mkdir(parents=True, exist_ok=True)
    await run_in_threadpool(shutil.copyfile, path, dest)
    jobs = await run_in_threadpool(state.store.create_jobs, principal.id,
                                   [NewJob(job_id, name, str(dest))], opts, None,
                                   s.max_attempts)
    await run_in_threadpool(state.dispatch, jobs)
    deadline = time.monotonic() + s.job_timeout_s * s.max_attempts + 30
    delay = 0.05
    while time.monotonic() < deadline:
        job = await run_in_threadpool(state.store.get_job, job_id)
        if job is not None and job.done:
            row = await run_in_threadpool(state.store.get_result, job_id)
            if row is not None:
                return row.result
            return error_result(name, job.error or {"code": "worker_lost", "message": ""})
        await asyncio.sleep(delay)
        delay = min(0.5, delay * 1.5)
    raise ServiceError(504, ErrorCode.TIMEOUT.value,
                       f"no worker finished the analysis in time; job {job_id} is still queued")
