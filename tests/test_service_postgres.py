"""The service against a real PostgreSQL server (tests/pg_support.py starts a throwaway one).

The same behaviours as the SQLite tests, through the PostgreSQL-only code paths: the quota
upsert (``INSERT .. ON CONFLICT DO NOTHING``), lease claims by conditional UPDATE under
concurrency, the re-queue expression (``greatest``), the result upsert, and jobs that
survive a server restart.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from antifake.service.api import create_app
from antifake.service.auth import CreatedKey, create_key
from antifake.service.store import JobStore, NewJob, ResultRow, utcnow
from pg_support import pg_cluster, pg_url  # noqa: F401  (fixtures)
from service_support import assert_jobs_survive_a_restart, make_settings, submit_jobs, wait_job
from synth import write_image


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_image(tmp_path_factory.mktemp("m") / "a.png").read_bytes()


def _h(key: CreatedKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.api_key}"}


def test_store_really_is_postgresql(pg_url: str) -> None:  # noqa: F811
    store = JobStore(pg_url)
    try:
        assert store.engine.dialect.name == "postgresql" and store.ping()
    finally:
        store.dispose()


def test_api_jobs_isolation_and_quota(tmp_path: Path, png: bytes, pg_url: str) -> None:  # noqa: F811
    settings = make_settings(tmp_path, auth_required=True, database_url=pg_url)
    app = create_app(settings)
    store = app.state.service.store
    assert store.engine.dialect.name == "postgresql"
    alice = create_key(store, settings, "alice")
    bob = create_key(store, settings, "bob")
    quota = create_key(store, settings, "quota", daily_quota=2)
    with TestClient(app) as client:
        ids = submit_jobs(client, png, "c2pa,test_heat", n=2, headers=_h(alice))
        for job_id in ids:
            job = wait_job(client, job_id, _h(alice))
            assert job["status"] == "succeeded" and job["attempts"] == 1, job
            assert job["result"]["file"].startswith("f")
            assert client.get(f"/v1/jobs/{job_id}/heatmap.png",
                              headers=_h(alice)).status_code == 200
            # Per-key isolation: another key's job does not exist for bob.
            assert client.get(f"/v1/jobs/{job_id}", headers=_h(bob)).status_code == 404
        assert client.get(f"/v1/jobs/{ids[0]}").status_code == 401

        # Daily quota (the upsert path): 2 files allowed, the 3rd refused, nothing counted
        # for the refused request; a 2-file request over the remaining 1 is refused whole.
        assert client.post("/v1/detect", files={"file": ("a.png", png)},
                           headers=_h(quota)).status_code == 200
        r = client.post("/v1/jobs", files=[("file", ("a.png", png)), ("file", ("b.png", png))],
                        headers=_h(quota))
        assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"
        assert client.post("/v1/detect", files={"file": ("a.png", png)},
                           headers=_h(quota)).status_code == 200
        r = client.post("/v1/detect", files={"file": ("a.png", png)}, headers=_h(quota))
        assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"
        assert store.usage_today(quota.key_id) == 2
        assert client.get("/readyz").status_code == 200


def test_quota_is_race_free_under_concurrent_requests(pg_url: str) -> None:  # noqa: F811
    store = JobStore(pg_url)
    try:
        with ThreadPoolExecutor(8) as pool:
            granted = list(pool.map(lambda _: store.consume_quota("k", 1, 5), range(24)))
        assert granted.count(True) == 5 and store.usage_today("k") == 5
        assert store.consume_quota("other", 3, None) and store.usage_today("other") == 3
    finally:
        store.dispose()


def test_concurrent_claims_take_each_job_exactly_once(pg_url: str) -> None:  # noqa: F811
    store = JobStore(pg_url)
    try:
        store.create_jobs("p", [NewJob(f"j{i:02d}", "a.png", "/x") for i in range(20)], {},
                          None, max_attempts=3)

        def drain(worker: int) -> list[str]:
            got = []
            while (job := store.claim(f"w{worker}", lease_s=30)) is not None:
                got.append(job.id)
            return got

        with ThreadPoolExecutor(6) as pool:
            claimed = [j for batch in pool.map(drain, range(6)) for j in batch]
        assert sorted(claimed) == [f"j{i:02d}" for i in range(20)]  # none twice, none lost
        assert store.queue_counts()["running"] == 20
        assert all(store.get_job(j).attempts == 1 for j in claimed)  # type: ignore[union-attr]
    finally:
        store.dispose()


def test_expired_lease_is_reclaimed_then_failed_and_requeue_expression(pg_url: str) -> None:  # noqa: F811
    store = JobStore(pg_url)
    try:
        store.create_jobs("p", [NewJob("j1", "a.png", "/nonexistent")], {}, None,
                          max_attempts=2)
        first = store.claim("worker-1", lease_s=0.3)
        assert first is not None and first.attempts == 1
        assert store.claim("worker-2", lease_s=0.3) is None  # leased
        store.heartbeat(["j1"], "worker-1", lease_s=0.3)
        assert store.expired_running_ids() == []
        time.sleep(0.4)  # worker-1 died: no heartbeat
        assert store.expired_running_ids() == ["j1"]
        second = store.claim("worker-2", lease_s=0.3)
        assert second is not None and second.attempts == 2
        store.set_progress("j1", "worker-1", 0.9, "zombie")  # a stale owner writes nothing
        assert store.get_job("j1").progress == 0.0  # type: ignore[union-attr]
        time.sleep(0.4)
        assert store.claim("worker-3", lease_s=0.3) is None  # attempts spent -> failed
        job = store.get_job("j1")
        assert job is not None and job.status == "failed"
        assert job.error is not None and job.error["code"] == "worker_lost"

        # Crash -> release_for_retry re-queues while attempts remain.
        store.create_jobs("p", [NewJob("j2", "a.png", "/x")], {}, None, max_attempts=3)
        assert store.claim("w", lease_s=30, job_id="j2") is not None
        again = store.release_for_retry("j2", "w", {"code": "worker_crashed", "message": "x"})
        assert again is not None and again.status == "queued" and again.attempts == 1

        # Restart re-queue: greatest(attempts - 1, 0) gives the interrupted attempt back.
        store.create_jobs("p", [NewJob("j3", "a.png", "/x")], {}, None, max_attempts=3)
        assert store.claim("srv-a", lease_s=30, job_id="j2") is not None  # attempts 2
        assert store.claim("srv-b", lease_s=30, job_id="j3") is not None  # attempts 1
        assert store.requeue_running(owner_prefix="srv-a") == 1
        assert store.requeue_running() == 1
        j2, j3 = store.get_job("j2"), store.get_job("j3")
        assert j2 is not None and (j2.status, j2.attempts) == ("queued", 1)
        assert j3 is not None and (j3.status, j3.attempts) == ("queued", 0)
    finally:
        store.dispose()


def test_results_are_idempotent(pg_url: str) -> None:  # noqa: F811
    store = JobStore(pg_url)
    try:
        store.create_jobs("p", [NewJob(f"j{i}", "a.png", "/x") for i in range(4)], {}, None,
                          max_attempts=3)
        result = {"file": "a.png", "verdict": "uncertain", "error": None}
        store.save_result("j0", result, None)
        store.save_result("j0", {**result, "verdict": "likely_authentic"}, "/h.npz")
        # Duplicate deliveries of the same jobs racing each other write one row each.
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: store.save_result(f"j{i % 3 + 1}", result, None),
                          range(12)))
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(ResultRow)) == 4
        row = store.get_result("j0")
        assert row is not None and row.result["verdict"] == "likely_authentic"
        assert row.heatmaps_path == "/h.npz"
        assert store.queue_counts()["succeeded"] == 4
        assert store.claim("w", lease_s=5) is None  # finished jobs are never claimed again
        # Retention sweep: finished jobs (with their results) and old usage rows go.
        expired = store.expired_jobs(utcnow() + timedelta(seconds=1))
        assert sorted(e[0] for e in expired) == ["j0", "j1", "j2", "j3"]
        assert ("j0", "/x", "/h.npz") in expired
        store.delete_jobs(["j0", "j1"])
        assert store.get_job("j0") is None and store.get_result("j0") is None
        assert store.queue_counts()["succeeded"] == 2
        store.consume_quota("k", 1, None)
        store.delete_old_usage("9999-12-31")
        assert store.usage_today("k") == 0
    finally:
        store.dispose()


def test_crashed_attempt_is_retried_by_the_worker(tmp_path: Path, png: bytes,
                                                  pg_url: str) -> None:  # noqa: F811
    settings = make_settings(tmp_path, auth_required=False, database_url=pg_url,
                             max_attempts=2)
    with TestClient(create_app(settings)) as client:
        flaky = submit_jobs(client, png, "test_flaky")[0]
        retried = wait_job(client, flaky)  # crashed once, succeeded on the 2nd attempt
        assert retried["status"] == "succeeded" and retried["attempts"] == 2
        assert retried["result"]["detectors"][0]["summary"] == "second try"


def test_jobs_survive_a_server_restart(tmp_path: Path, png: bytes, pg_url: str,  # noqa: F811
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTIFAKE_TEST_SLOW_S", "0.4")
    settings = make_settings(tmp_path, auth_required=False, database_url=pg_url)
    assert_jobs_survive_a_restart(settings, pg_url, png, n=5, min_in_flight=2)
