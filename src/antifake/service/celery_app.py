"""Scale-out backend (``queue_backend="celery"``): Celery with Redis as the broker.

The database stays the source of truth: a Celery message only says "job X may be run";
the worker claims X with the same leased, attempt-counted claim as the local runner, so a
duplicate or redelivered message is a no-op and a message lost with a dead Redis is
re-published by the API from the database (``republish_stranded``).

Worker processes (Celery's prefork pool) give the isolation: a hard ``time_limit`` kills a
hung analysis and Celery replaces the child; with ``acks_late`` +
``task_reject_on_worker_lost`` a crashed child's message is redelivered.

Each prefork child caps its address space at ``analysis_memory_mb`` when it starts
(``worker_process_init``), so a file that needs more fails with ``too_large`` instead of
growing the child until the host's OOM killer steps in; the worker's main process, which
runs no analysis, is not capped. (Pools without children, ``solo``/``threads``, get no cap.)

Run a worker with ``antifake worker`` (or ``celery -A antifake.service.celery_app worker``);
it reads the same ``ANTIFAKE_*`` environment as the server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from antifake.service.settings import ServiceSettings
from antifake.service.store import utcnow

log = logging.getLogger(__name__)

TASK_NAME = "antifake.analyze_job"


def create_celery_app(settings: ServiceSettings, register_task: bool = True) -> Celery:
    """A Celery app for ``settings``; the API only publishes (``register_task=False``)."""
    app = Celery("antifake", broker=settings.broker_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,  # results live in the database
        worker_prefetch_multiplier=1,  # long tasks: don't hoard messages in one worker
        task_time_limit=settings.job_timeout_s + 30,
        task_soft_time_limit=settings.job_timeout_s,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": max(3600, settings.job_timeout_s * 4)},
        task_default_queue="antifake",
        worker_hijack_root_logger=False,
    )
    app.conf.antifake_settings = settings
    if not register_task:
        return app

    def cap_pool_child(**_kwargs: Any) -> None:
        from antifake.allocator import tune_allocator
        from antifake.service.analysis import apply_memory_limit

        tune_allocator()
        apply_memory_limit(settings.analysis_memory_mb)

    # Fires in each prefork child (the processes that run the engine), never in the main
    # worker or the API server. weak=False: the closure has no other reference.
    worker_process_init.connect(cap_pool_child, weak=False)

    @app.task(name=TASK_NAME, bind=True, max_retries=None)
    def analyze_job(self: Any, job_id: str) -> str:
        def retry(countdown: float) -> None:
            raise self.retry(countdown=countdown)

        return run_job_in_worker(settings, job_id, retry)

    return app


_STORE: Any = None


def _store(settings: ServiceSettings) -> Any:
    global _STORE
    if _STORE is None:
        from antifake.service.store import JobStore

        settings.ensure_dirs()
        _STORE = JobStore(settings.db_url)
    return _STORE


def run_job_in_worker(
    settings: ServiceSettings, job_id: str, retry: Callable[[float], None] | None = None
) -> str:
    """Body of the Celery task: claim ``job_id``, analyse in this process, store the result."""
    from celery.exceptions import SoftTimeLimitExceeded

    from antifake.errors import ErrorCode
    from antifake.service.analysis import run_analysis
    from antifake.service.jobs import AnalysisAborted, Heartbeat, execute_job
    from antifake.service.worker import make_owner_id

    store = _store(settings)
    owner = make_owner_id()
    job = store.claim(owner, settings.lease_s, job_id=job_id)
    if job is None:
        current = store.get_job(job_id)
        if current is not None and current.status == "running" and retry is not None:
            # Running under a lease: either another worker has it (this message is a
            # duplicate) or its worker just died and the lease has not expired yet (a
            # redelivery after a hard kill). Look again once the lease could have expired.
            retry(settings.lease_s)
        return "not claimable"  # finished, deleted, or running elsewhere
    heartbeat = Heartbeat(store, owner, settings.lease_s)
    heartbeat.add(job.id)
    heartbeat.start()

    def analyze(task: Any, progress: Any) -> Any:
        try:
            return run_analysis(task, progress)
        except SoftTimeLimitExceeded as exc:
            raise AnalysisAborted(ErrorCode.TIMEOUT.value,
                                  f"analysis exceeded {settings.job_timeout_s:.0f} s") from exc

    try:
        status = execute_job(store, settings, job, owner, analyze)
    finally:
        heartbeat.stop()
    if status == "queued":  # aborted attempt with attempts left: run it again
        publish_job(_current_app(), job.id)
    return status


def _current_app() -> Celery:
    from celery import current_app

    return current_app


def publish_job(app: Celery, job_id: str) -> None:
    app.send_task(TASK_NAME, args=[job_id])


# A queued job untouched this long is re-published (its message may have been lost).
STALE_QUEUED_S = 120.0


def republish_stranded(app: Celery, store: Any, include_queued: bool,
                       stale_queued_s: float = STALE_QUEUED_S) -> int:
    """Re-send messages for jobs a worker should be running but is not.

    Running jobs with an expired lease lost their worker; at server start, every queued
    job is re-sent too (the message may have been lost between the database commit and
    the publish, or with a Redis that was restarted without persistence), and afterwards,
    periodically, queued jobs untouched for ``stale_queued_s`` (a broker flushed while the
    server runs: issue 11 item 6). Duplicates are harmless: only one claim succeeds.
    """
    ids = list(store.expired_running_ids())
    if include_queued:
        ids += store.job_ids("queued")
    else:
        ids += store.stale_queued_ids(utcnow() - timedelta(seconds=stale_queued_s))
    for job_id in ids:
        try:
            publish_job(app, job_id)
        except Exception:
            log.exception("could not publish job %s", job_id)
            break
    return len(ids)


def workers_responding(app: Celery, timeout_s: float = 1.0) -> int:
    replies = app.control.ping(timeout=timeout_s) or []
    return len(replies)


# ``celery -A antifake.service.celery_app worker`` finds this.
app = create_celery_app(ServiceSettings.from_env())
