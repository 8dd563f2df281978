"""Fault injection on the service, beyond tests/test_service_worker.py: an analysis process
SIGKILLed from outside mid-job, the whole server SIGKILLed mid-queue, a full disk, a
database that fails for a while, and files orphaned by any of these.

Each test is bounded (polling with deadlines) and uses the test detectors of
tests/service_support.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from antifake.service.api import create_app
from antifake.service.auth import create_key
from antifake.service.store import JobRow, JobStore, utcnow
from service_support import make_settings, wait_job
from synth import write_image

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_image(tmp_path_factory.mktemp("m") / "a.png").read_bytes()


def _wait(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval_s)


# -- an analysis process killed from outside ---------------------------------------------


def test_analysis_process_sigkilled_mid_job_is_retried(
        tmp_path: Path, png: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTIFAKE_TEST_SLOW_S", "1.5")  # inherited by the spawned processes
    settings = make_settings(tmp_path, auth_required=False, detectors=("test_slow",),
                             max_attempts=3)
    app = create_app(settings)
    with TestClient(app) as client:
        state = app.state.service
        job = client.post("/v1/jobs", files={"file": ("a.png", png)}).json()
        _wait(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "running",
              20, "the job to start")
        slot = state.pool._slots[0]
        victim = slot.proc.pid
        time.sleep(0.3)  # inside the detector's sleep
        os.kill(victim, signal.SIGKILL)
        done = wait_job(client, job["id"], timeout_s=40)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2, done
        assert slot.proc.pid != victim and slot.alive()
        assert client.get("/readyz").status_code == 200
        metrics = client.get("/metrics").text
        assert 'antifake_worker_restarts_total{reason="crashed"} 1.0' in metrics


# -- the whole server SIGKILLed with a queue, then restarted ------------------------------


@contextmanager
def _server(settings: Any, extra_env: dict[str, str] | None = None,
            wrapper: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """uvicorn + its analysis processes in their own process group."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, **settings.to_env(), **(extra_env or {}),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "antifake.service.api:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "critical"]
    proc = subprocess.Popen((wrapper or []) + cmd, env=env, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
            try:
                return httpx.get(url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(up, 60, "the server to start", 0.1)
        yield {"url": url, "proc": proc}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with_group_gone(proc.pid)


def with_group_gone(pgid: int) -> None:
    """Make sure no process of the group survives (analysis processes included)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    time.sleep(0.2)


def test_server_sigkilled_mid_queue_then_restarted_completes_every_job(
        tmp_path: Path, png: bytes) -> None:
    settings = make_settings(tmp_path, auth_required=False, detectors=("test_slow",),
                             workers=1, lease_s=2.0, max_attempts=3)
    env = {"ANTIFAKE_TEST_SLOW_S": "0.4"}
    n_jobs = 10
    with _server(settings, env) as srv:
        ids = []
        for i in range(n_jobs):
            r = httpx.post(srv["url"] + "/v1/jobs", files={"file": (f"{i}.png", png)},
                           timeout=30)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])

        def some_done() -> bool:
            states = [httpx.get(f"{srv['url']}/v1/jobs/{j}", timeout=5).json()["status"]
                      for j in ids]
            return "succeeded" in states and "queued" in states

        _wait(some_done, 60, "the queue to be part-way through", 0.1)
        os.killpg(srv["proc"].pid, signal.SIGKILL)  # server and analysis processes at once
        srv["proc"].wait(10)
    store = JobStore(settings.db_url)
    try:
        before = {j: getattr(store.get_job(j), "status", None) for j in ids}
    finally:
        store.dispose()
    assert set(before.values()) - {"succeeded", "queued", "running"} == set(), before
    assert "queued" in before.values()
    with _server(settings, env) as srv:
        def all_done() -> list[dict[str, Any]] | None:
            jobs = [httpx.get(f"{srv['url']}/v1/jobs/{j}", timeout=5).json() for j in ids]
            return jobs if all(j["status"] in ("succeeded", "failed") for j in jobs) else None

        jobs = _wait(all_done, 90, "every job to finish", 0.2)
    assert [j["status"] for j in jobs] == ["succeeded"] * n_jobs, jobs
    assert all(j["result"] and j["result"]["error"] is None for j in jobs)
    store = JobStore(settings.db_url)
    try:
        with store.session() as s:
            from sqlalchemy import func, select

            from antifake.service.store import ResultRow

            n_results = s.execute(select(func.count()).select_from(ResultRow)).scalar()
    finally:
        store.dispose()
    assert n_results == n_jobs  # one result per job: nothing lost, nothing duplicated


# -- full disk -------------------------------------------------------------------------


def _can_unshare_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt && echo ok"],
        capture_output=True, text=True, timeout=10)
    return probe.stdout.strip() == "ok"


@pytest.mark.skipif(not _can_unshare_mount(),
                    reason="needs `unshare -rm` + tmpfs mount (user/mount namespaces)")
def test_full_disk_refuses_upload_cleanly_and_recovers(tmp_path: Path, png: bytes) -> None:
    """The server's data directory is a 3 MiB tmpfs (in a private mount namespace); the
    database lives elsewhere. Uploads that do not fit are refused with 507
    ``insufficient_storage``; no job row, no partial file; the server keeps working."""
    data = tmp_path / "data"
    data.mkdir()
    db = tmp_path / "db.sqlite"
    settings = make_settings(data, auth_required=False, detectors=("c2pa",),
                             database_url=f"sqlite:///{db}", max_upload_bytes=16 * 2**20)
    # Make the directories (and pepper) on the real disk first; the tmpfs hides them, so
    # the server recreates them inside it at start.
    wrapper = ["unshare", "-rm", "sh", "-c",
               f'mount -t tmpfs -o size=3m tmpfs "{data}" && exec "$0" "$@"']
    with _server(settings, wrapper=wrapper) as srv:
        url, pid = srv["url"], srv["proc"].pid
        view = Path(f"/proc/{pid}/root") / str(data).lstrip("/")
        ok = httpx.post(url + "/v1/jobs", files={"file": ("a.png", png)}, timeout=30)
        assert ok.status_code == 202, ok.text
        blob = os.urandom(2 * 2**20)  # not media; only its size matters
        codes = []
        for i in range(3):  # 3 x 2 MiB into ~3 MiB: at least one must not fit
            r = httpx.post(url + "/v1/jobs", files={"file": (f"big{i}.bin", blob)}, timeout=30)
            codes.append(r.status_code)
            if r.status_code != 202:
                assert r.status_code == 507, r.text
                assert r.json()["error"]["code"] == "insufficient_storage"
        assert 507 in codes, codes
        accepted = codes.count(202) + 1
        uploads = [p for p in (view / "uploads").rglob("*") if p.is_file()]
        assert len(uploads) == accepted, uploads  # no partial file left behind
        assert not any((view / "tmp").iterdir())
        store = JobStore(settings.db_url)
        try:
            with store.session() as s:
                from sqlalchemy import func, select

                n_jobs = s.execute(select(func.count()).select_from(JobRow)).scalar()
        finally:
            store.dispose()
        assert n_jobs == accepted  # the refused uploads left no job behind
        # synchronous detect on a full disk: refused the same way, not a 500
        r = httpx.post(url + "/v1/detect", files={"file": ("big.bin", blob)}, timeout=30)
        assert r.status_code == 507, r.text
        # free space (delete the big uploads) and the server works again
        for p in uploads:
            if p.stat().st_size > 1_000_000:
                p.unlink()
        again = httpx.post(url + "/v1/detect", files={"file": ("a.png", png)}, timeout=30)
        assert again.status_code == 200 and again.json()["error"] is None, again.text


# -- the database fails for a while ------------------------------------------------------


class _DatabaseOutage:
    """Makes every statement on ``engine`` fail like an unreachable database while on."""

    def __init__(self, engine: Any) -> None:
        self.on = False
        self.failures = 0
        event.listen(engine, "before_cursor_execute", self._hook)

    def _hook(self, *_args: Any, **_kw: Any) -> None:
        if self.on:
            self.failures += 1
            raise sqlite3.OperationalError("unable to open database file")


def test_database_outage_answers_503_then_recovers_without_losing_jobs(
        tmp_path: Path, png: bytes) -> None:
    settings = make_settings(tmp_path, auth_required=True, detectors=("c2pa",),
                             lease_s=1.0, max_attempts=3)
    app = create_app(settings)
    state = app.state.service
    key = create_key(state.store, settings, "k")
    hdr = {"Authorization": f"Bearer {key.api_key}"}
    outage = _DatabaseOutage(state.store.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        before = client.post("/v1/jobs", files={"file": ("a.png", png)}, headers=hdr)
        assert before.status_code == 202
        outage.on = True
        state.auth._cache.clear()  # a cached key would skip the database
        try:
            answers = {
                "me": client.get("/v1/me", headers=hdr),
                "submit": client.post("/v1/jobs", files={"file": ("b.png", png)},
                                      headers=hdr),
                "detect": client.post("/v1/detect", files={"file": ("c.png", png)},
                                      headers=hdr),
                "job": client.get(f"/v1/jobs/{before.json()['id']}", headers=hdr),
                "readyz": client.get("/readyz"),
            }
            time.sleep(1.5)  # the dispatchers and heartbeat hit the outage too
        finally:
            outage.on = False
        assert outage.failures > 0
        for name, r in answers.items():
            assert r.status_code == 503, (name, r.status_code, r.text[:300])
            body = r.json()
            if name != "readyz":
                assert body["error"]["code"] == "unavailable", (name, body)
                assert "Retry-After" in r.headers
        # nothing orphaned by the refused upload
        uploads = [p for p in settings.uploads_dir.rglob("*") if p.is_file()]
        assert len(uploads) <= 1
        # recovered: the earlier job finishes, new requests work
        done = wait_job(client, before.json()["id"], hdr, timeout_s=30)
        assert done["status"] == "succeeded", done
        assert client.get("/v1/me", headers=hdr).status_code == 200
        after = client.post("/v1/jobs", files={"file": ("d.png", png)}, headers=hdr)
        assert after.status_code == 202
        assert wait_job(client, after.json()["id"], hdr)["status"] == "succeeded"
        assert client.get("/readyz").status_code == 200
        assert state.runner.alive()


# -- orphans ----------------------------------------------------------------------------


def test_sweeper_removes_orphans_but_not_live_uploads(tmp_path: Path, png: bytes) -> None:
    """Files no job row points to (an upload saved just before a crash or a failed insert,
    a half-written heatmap) are deleted once older than the retention; the upload of a job
    that is still queued is kept however old."""
    settings = make_settings(tmp_path, auth_required=False, detectors=("c2pa",),
                             retention_s=3600.0, workers=1)
    app = create_app(settings)
    state = app.state.service
    old = time.time() - 2 * 3600
    orphan_upload = settings.uploads_dir / "ab" / ("ab" + "0" * 30 + ".bin")
    orphan_heatmap = settings.results_dir / ("cd" + "1" * 30 + ".npz")
    orphan_tmp_heatmap = settings.results_dir / "tmpxyz.npz.tmp"
    fresh_orphan = settings.uploads_dir / "ef" / ("ef" + "2" * 30 + ".bin")
    for p in (orphan_upload, orphan_heatmap, orphan_tmp_heatmap, fresh_orphan):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * 100)
    for p in (orphan_upload, orphan_heatmap, orphan_tmp_heatmap):
        os.utime(p, (old, old))
    # A job still queued (no runner picks it up: we never start the app's lifespan).
    from antifake.service.store import NewJob

    live_id = "12" + "3" * 30
    live_upload = settings.uploads_dir / "12" / f"{live_id}.bin"
    live_upload.parent.mkdir(parents=True, exist_ok=True)
    live_upload.write_bytes(png)
    os.utime(live_upload, (old, old))
    state.store.create_jobs("local", [NewJob(live_id, "a.png", str(live_upload))], {}, None, 3)
    with state.store.session() as s:
        s.get(JobRow, live_id).created_at = utcnow() - timedelta(hours=2)

    from antifake.service.worker import Sweeper

    Sweeper(settings, state.store).sweep_once()
    assert live_upload.exists(), "a queued job's upload was deleted"
    assert fresh_orphan.exists(), "an orphan younger than the retention was deleted"
    leftovers = [p for p in (orphan_upload, orphan_heatmap, orphan_tmp_heatmap) if p.exists()]
    assert leftovers == [], leftovers
    state.store.dispose()


def test_database_outage_while_a_job_runs_does_not_strand_it(
        tmp_path: Path, png: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The analysis finishes while the database is down, so its result cannot be stored:
    the job must come back (lease expiry -> retry) and succeed, not stay 'running'."""
    monkeypatch.setenv("ANTIFAKE_TEST_SLOW_S", "0.8")
    settings = make_settings(tmp_path, auth_required=False, detectors=("test_slow",),
                             lease_s=1.0, max_attempts=3)
    app = create_app(settings)
    state = app.state.service
    outage = _DatabaseOutage(state.store.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        job = client.post("/v1/jobs", files={"file": ("a.png", png)}).json()
        _wait(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "running",
              20, "the job to start")
        outage.on = True
        time.sleep(2.0)  # the analysis ends inside the outage
        outage.on = False
        assert outage.failures > 0
        done = wait_job(client, job["id"], timeout_s=40)
        assert done["status"] == "succeeded", done
        assert done["result"]["error"] is None
