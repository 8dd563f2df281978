"""Running one claimed job, the same way for the local pool and for Celery workers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from antifake.errors import ErrorCode
from antifake.service import webhooks
from antifake.service.analysis import AnalysisOutcome, AnalysisTask, ProgressFn, save_heatmaps
from antifake.service.auth import hash_key
from antifake.service.settings import ServiceSettings
from antifake.service.store import LOCAL_PRINCIPAL, Job, JobStore, ResultRow, utcnow

log = logging.getLogger(__name__)

# analyse(task, progress) -> outcome; raises AnalysisAborted when the attempt died.
AnalyzeFn = Callable[[AnalysisTask, ProgressFn], AnalysisOutcome]


class AnalysisAborted(Exception):
    """The analysis process crashed or was killed (timeout): the attempt may be retried."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def task_for_job(job: Job, settings: ServiceSettings) -> AnalysisTask:
    opts = job.options
    detectors = opts.get("detectors")
    return AnalysisTask(
        path=job.upload_path,
        display_name=job.file_name,
        detectors=tuple(detectors) if detectors else settings.detectors,
        sampling=opts.get("sampling") or settings.default_sampling,
        want_heatmaps=True,
        limits=settings.limits(),
        plugin_modules=settings.plugin_modules,
    )


def job_to_json(job: Job, result: ResultRow | None, include_result: bool = True) -> dict[str, Any]:
    """The public JSON of a job (``GET /v1/jobs/{id}`` and webhook bodies)."""
    out: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "progress": round(job.progress, 4),
        "stage": job.stage,
        "file": job.file_name,
        "attempts": job.attempts,
        "created_at": job.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": job.updated_at.isoformat().replace("+00:00", "Z"),
        "finished_at": job.finished_at.isoformat().replace("+00:00", "Z")
        if job.finished_at else None,
        "error": job.error,
        "webhook_status": job.webhook_status,
        "has_heatmap": bool(result and result.heatmaps_path),
    }
    if include_result:
        out["result"] = result.result if (result and job.done) else None
    return out


def webhook_secret_for(store: JobStore, settings: ServiceSettings, principal: str) -> str:
    if principal == LOCAL_PRINCIPAL:
        return "whsec_" + hash_key(settings.resolved_pepper(), "local-webhook-secret")[:43]
    row = store.get_key(principal)
    return row.webhook_secret if row else ""


# Webhooks are delivered here, never on the thread that dispatches jobs: a receiver that
# answers slowly held a dispatcher for as long as it liked, and two of them stopped all
# processing with --workers 2 (issue 11 item 1).
_deliveries = ThreadPoolExecutor(max_workers=4, thread_name_prefix="antifake-webhook")


def _notify(store: JobStore, settings: ServiceSettings, job_id: str) -> None:
    """Queue the job's webhook delivery (if it has one) and return at once."""
    _deliveries.submit(_deliver_webhook, store, settings, job_id)


def redeliver_pending_webhooks(store: JobStore, settings: ServiceSettings,
                               grace_s: float = 60.0, stuck_s: float = 600.0) -> int:
    """The outbox: queue again the webhooks of finished jobs that never got a final
    delivery status (at-least-once: a kill between saving a result and delivering it left
    ``webhook_status`` null forever, issue 11 item 7). Receivers should de-duplicate by
    job id. Returns how many were queued."""
    now = utcnow()
    ids = store.claim_undelivered_webhooks(now - timedelta(seconds=grace_s),
                                           now - timedelta(seconds=stuck_s))
    for job_id in ids:
        _notify(store, settings, job_id)
    return len(ids)


def _deliver_webhook(store: JobStore, settings: ServiceSettings, job_id: str) -> None:
    try:
        _deliver_now(store, settings, job_id)
    except Exception:  # noqa: BLE001 - a failed delivery must not kill the pool thread
        log.exception("webhook delivery for job %s failed", job_id)


def _deliver_now(store: JobStore, settings: ServiceSettings, job_id: str) -> None:
    job = store.get_job(job_id)
    if job is None or not job.webhook_url:
        return
    payload = {"event": "job.finished", "job": job_to_json(job, store.get_result(job_id))}
    status = webhooks.deliver(
        job.webhook_url, webhook_secret_for(store, settings, job.principal), payload,
        timeout_s=settings.webhook_timeout_s, allow_private=settings.webhook_allow_private,
    )
    store.set_webhook_status(job_id, status)


def execute_job(
    store: JobStore,
    settings: ServiceSettings,
    job: Job,
    owner: str,
    analyze: AnalyzeFn,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> str:
    """Run a job claimed by ``owner`` to an end state or back to the queue.

    Returns the job's status afterwards. Progress is written to the job row, throttled.
    """
    last = {"t": 0.0, "stage": None}

    def progress(fraction: float, stage: str) -> None:
        now = time.monotonic()
        if stage != last["stage"] or now - float(last["t"] or 0.0) > 0.5:
            last["t"], last["stage"] = now, stage  # type: ignore[assignment]
            try:
                store.set_progress(job.id, owner, fraction, stage)
            except Exception:  # progress is cosmetic; never fail a job over it
                log.exception("progress update failed for %s", job.id)

    try:
        outcome = analyze(task_for_job(job, settings), progress)
    except AnalysisAborted as exc:
        # A timeout is the file's own cost (same file, same options: same timeout), so it
        # is not retried; a crash may be the process's fault and is (issue 11 item 5).
        after = store.release_for_retry(job.id, owner, {"code": exc.code, "message": exc.message},
                                        retry=exc.code != ErrorCode.TIMEOUT.value)
        log.warning("job %s attempt %d aborted: %s", job.id, job.attempts, exc.message)
        if after is not None and after.status == "failed":
            _notify(store, settings, job.id)
        return after.status if after else "lost"
    except Exception as exc:  # a bug in the service itself: record it, do not loop
        log.exception("job %s failed", job.id)
        outcome = AnalysisOutcome(
            result={"file": job.file_name, "error": {
                "code": ErrorCode.INTERNAL_ERROR.value, "message": repr(exc)}},
            heatmaps={},
        )
    heatmaps_path = save_heatmaps(settings.results_dir, job.id, outcome.heatmaps)
    store.save_result(job.id, outcome.result, heatmaps_path)
    if on_result is not None:
        on_result(outcome.result)
    _notify(store, settings, job.id)
    return "failed" if outcome.result.get("error") else "succeeded"


class Heartbeat:
    """Renews the leases of the jobs this process is running, every ``lease_s / 3``."""

    def __init__(self, store: JobStore, owner: str, lease_s: float) -> None:
        self.store, self.owner, self.lease_s = store, owner, lease_s
        self._active: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="antifake-heartbeat", daemon=True)
        self.extra: list[Callable[[], None]] = []  # other periodic upkeep (revive workers)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def add(self, job_id: str) -> None:
        with self._lock:
            self._active.add(job_id)

    def discard(self, job_id: str) -> None:
        with self._lock:
            self._active.discard(job_id)

    def _run(self) -> None:
        while not self._stop.wait(max(0.2, self.lease_s / 3)):
            with self._lock:
                ids = list(self._active)
            try:
                self.store.heartbeat(ids, self.owner, self.lease_s)
                for fn in self.extra:
                    fn()
            except Exception:
                log.exception("heartbeat failed")
