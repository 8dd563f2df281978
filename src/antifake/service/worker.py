"""The embedded (``queue_backend="local"``) worker: analysis processes + job dispatchers.

Analyses never run in the server process. :class:`AnalysisPool` keeps N long-lived
processes ("slots", spawned, so no forked threads/locks), each fed one task at a time over a
pipe. A slot whose process dies (a decoder segfault, the OOM killer) or runs past the
per-job timeout is killed and replaced on its own; the other slots and the server are
untouched. This is the per-slot equivalent of recreating a ``ProcessPoolExecutor`` on
``BrokenProcessPool``, without losing the innocent jobs that share the pool.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from antifake.errors import ErrorCode
from antifake.service.analysis import (
    AnalysisOutcome,
    AnalysisTask,
    ProgressFn,
    apply_memory_limit,
    memory_exceeded_result,
    run_analysis,
)
from antifake.service.jobs import AnalysisAborted, Heartbeat, execute_job
from antifake.service.settings import ServiceSettings
from antifake.service.store import JobStore, utcnow

log = logging.getLogger(__name__)

WORKER_CRASHED = "worker_crashed"  # service-level error code: the analysis process died


def _slot_main(conn: Connection, memory_mb: int = 0) -> None:
    """Analysis process: receive a task, send progress messages and one final message.

    ``memory_mb`` caps this process's address space (``RLIMIT_AS``) once the imports are
    done: a file that needs more fails with ``too_large`` instead of growing the process
    until the host's OOM killer steps in.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    from antifake.allocator import tune_allocator

    tune_allocator()
    try:  # warm up while idle so the first request does not pay for the imports
        import antifake.engine  # noqa: F401
        from antifake.detectors.registry import ensure_builtin_detectors

        ensure_builtin_detectors()
    except Exception:  # reported again, per file, when a task needs it
        pass
    apply_memory_limit(memory_mb)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return

        def progress(fraction: float, stage: str) -> None:
            conn.send(("progress", fraction, stage))

        try:
            outcome = run_analysis(task, progress)
            conn.send(("done", outcome))
        except MemoryError:  # pickling a big result (heatmaps) failed under the cap
            outcome = AnalysisOutcome(result=memory_exceeded_result(task.display_name),
                                      heatmaps={})
            conn.send(("done", outcome))
        except BaseException as exc:  # run_analysis handles media errors; this is a bug
            conn.send(("error", repr(exc)))


class _Slot:
    def __init__(self, ctx: Any, index: int, on_restart: Callable[[str], None] | None,
                 memory_mb: int = 0) -> None:
        self.ctx, self.index, self.on_restart = ctx, index, on_restart
        self.memory_mb = memory_mb
        self.busy = False
        self._start()

    def _start(self) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        self.proc = self.ctx.Process(
            target=_slot_main, args=(child, self.memory_mb), name=f"antifake-analysis-{self.index}",
            daemon=True,
        )
        self.proc.start()
        child.close()
        self.conn: Connection = parent

    def alive(self) -> bool:
        return bool(self.proc.is_alive())

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.join(5)
        finally:
            self.conn.close()

    def restart(self, reason: str) -> None:
        log.warning("restarting analysis process %d: %s", self.index, reason)
        self.kill()
        self._start()
        if self.on_restart:
            self.on_restart(reason)

    def run(
        self, task: AnalysisTask, timeout_s: float, progress: ProgressFn | None
    ) -> AnalysisOutcome:
        if not self.alive():
            self.restart("found dead before a task")
        try:
            self.conn.send(task)
        except OSError:
            self.restart("pipe broken before a task")
            self.conn.send(task)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.restart("timeout")
                raise AnalysisAborted(
                    ErrorCode.TIMEOUT.value, f"analysis exceeded {timeout_s:.0f} s and was killed"
                )
            try:
                ready = self.conn.poll(min(remaining, 0.5))
                msg = self.conn.recv() if ready else None
            except (EOFError, OSError):
                ready, msg = True, None
            if msg is None:
                if ready or not self.alive():
                    self.proc.join(1)
                    code = self.proc.exitcode
                    self.restart("crashed")
                    raise AnalysisAborted(
                        WORKER_CRASHED, f"the analysis process died (exit code {code})"
                    )
                continue
            kind = msg[0]
            if kind == "progress":
                if progress is not None:
                    progress(msg[1], msg[2])
            elif kind == "done":
                return msg[1]
            else:
                raise RuntimeError(f"analysis process error: {msg[1]}")


class AnalysisPool:
    """N analysis processes; :meth:`analyze` blocks until a slot is free.

    ``memory_mb`` (> 0) caps each process's address space (``ServiceSettings.
    analysis_memory_mb``).
    """

    def __init__(self, size: int, on_restart: Callable[[str], None] | None = None,
                 memory_mb: int = 0) -> None:
        ctx = mp.get_context("spawn")
        self._slots = [_Slot(ctx, i, on_restart, memory_mb) for i in range(size)]
        self._free: queue.Queue[_Slot] = queue.Queue()
        for s in self._slots:
            self._free.put(s)
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._slots)

    def analyze(
        self, task: AnalysisTask, timeout_s: float, progress: ProgressFn | None = None
    ) -> AnalysisOutcome:
        if self._closed:
            raise RuntimeError("analysis pool is closed")
        slot = self._free.get()
        slot.busy = True
        try:
            return slot.run(task, timeout_s, progress)
        finally:
            slot.busy = False
            self._free.put(slot)

    def idle_slots(self) -> int:
        return self._free.qsize()

    def alive(self) -> bool:
        return not self._closed and all(s.alive() or s.busy for s in self._slots)

    def revive(self) -> None:
        """Restart idle slots whose process died between tasks (periodic upkeep)."""
        for s in self._slots:
            if not s.busy and not s.alive() and not self._closed:
                try:
                    s.restart("found dead while idle")
                except Exception:
                    log.exception("could not restart analysis process")

    def close(self) -> None:
        self._closed = True
        for s in self._slots:
            with contextlib.suppress(OSError):
                s.conn.send(None)
        for s in self._slots:
            s.proc.join(2)
            if s.proc.is_alive():
                s.kill()


def make_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LocalJobRunner:
    """Dispatcher threads that claim jobs from the database and run them in the pool."""

    def __init__(
        self,
        settings: ServiceSettings,
        store: JobStore,
        pool: AnalysisPool,
        on_result: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.settings, self.store, self.pool, self.on_result = settings, store, pool, on_result
        self.owner = make_owner_id()
        self.heartbeat = Heartbeat(store, self.owner, settings.lease_s)
        self.heartbeat.extra.append(pool.revive)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"antifake-dispatch-{i}", daemon=True)
            for i in range(pool.size)
        ]

    def start(self) -> None:
        if self.settings.requeue_running_on_startup:
            n = self.store.requeue_running()
            if n:
                log.info("re-queued %d job(s) left running by a previous server", n)
        self.heartbeat.start()
        for t in self._threads:
            t.start()

    def wake(self) -> None:
        self._wake.set()

    def alive(self) -> bool:
        return (all(t.is_alive() for t in self._threads) and self.heartbeat.is_alive()
                and self.pool.alive())

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self.heartbeat.stop()
        for t in self._threads:
            t.join(timeout_s)

    def _analyze(self, task: AnalysisTask, progress: ProgressFn) -> AnalysisOutcome:
        return self.pool.analyze(task, self.settings.job_timeout_s, progress)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim(self.owner, self.settings.lease_s)
            except Exception:
                log.exception("claiming a job failed")
                self._stop.wait(1.0)
                continue
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self.heartbeat.add(job.id)
            try:
                status = execute_job(self.store, self.settings, job, self.owner, self._analyze,
                                     self.on_result)
                if status == "queued":
                    self._wake.set()
            except Exception:
                log.exception("job %s: dispatcher error", job.id)
            finally:
                self.heartbeat.discard(job.id)


class Periodic:
    """Calls ``fn`` every ``interval_s`` in a daemon thread (errors logged, never fatal)."""

    def __init__(self, interval_s: float, fn: Callable[[], Any], name: str) -> None:
        self.interval_s, self.fn = interval_s, fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.fn()
            except Exception:
                log.exception("%s failed", self._thread.name)


class Sweeper:
    """Deletes uploads, results and job rows past the retention, every ``sweep_interval_s``."""

    def __init__(self, settings: ServiceSettings, store: JobStore) -> None:
        self.settings, self.store = settings, store
        self._periodic = Periodic(settings.sweep_interval_s, self.sweep_once, "antifake-sweeper")

    def start(self) -> None:
        self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()

    def sweep_once(self) -> int:
        """Delete everything older than the retention; returns the number of jobs removed."""
        cutoff = utcnow() - timedelta(seconds=self.settings.retention_s)
        expired = self.store.expired_jobs(cutoff)
        for _job_id, upload, heatmaps in expired:
            for p in (upload, heatmaps):
                if p:
                    _remove(Path(p))
        self.store.delete_jobs([j for j, _, _ in expired])
        self.store.delete_old_usage((utcnow() - timedelta(days=2)).strftime("%Y-%m-%d"))
        # Leftover synchronous uploads (a crash between write and delete) and empty dirs.
        cutoff_ts = time.time() - self.settings.retention_s
        for leftover in self.settings.tmp_dir.glob("*"):
            if leftover.stat().st_mtime < cutoff_ts:
                _remove(leftover)
        self._sweep_orphans(cutoff_ts)
        for d in self.settings.uploads_dir.glob("*"):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        return len(expired)

    def _sweep_orphans(self, cutoff_ts: float) -> None:
        """Delete uploads/heatmaps older than the retention that no job row points to (saved
        just before a crash or a failed insert; half-written ``.tmp`` files). A job's own
        upload is kept as long as its row exists, however old (e.g. still queued)."""
        candidates = [*self.settings.uploads_dir.glob("*/*"), *self.settings.results_dir.glob("*")]
        for p in candidates:
            try:
                if not p.is_file() or p.stat().st_mtime >= cutoff_ts:
                    continue
            except OSError:
                continue
            job_id = p.name.split(".", 1)[0]
            if p.name.endswith(".tmp") or self.store.get_job(job_id) is None:
                _remove(p)


def _remove(p: Path) -> None:
    try:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    except OSError:
        log.warning("could not delete %s", p)
