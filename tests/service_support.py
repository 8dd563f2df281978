"""Test-only detectors and helpers for the service tests.

The service imports this module inside its analysis processes through the
``plugin_modules`` setting, so these detectors exist there too. None is a default detector.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.media.types import Media, MediaType
from antifake.results import DetectorKind, DetectorResult

PLUGIN = "service_support"


@register_detector("test_heat", default=False, description="test: fixed score + heatmap")
class HeatDetector:
    name: ClassVar[str] = "test_heat"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        frame = next(iter(media.frames(ctx.sampling)))
        h, w = frame.rgb.shape[:2]
        heat = np.zeros((h, w), dtype=np.float32)
        heat[: h // 2, : w // 2] = 1.0
        # 0.97: above the shipped fusion's AI threshold of any media type (image 0.916).
        return DetectorResult(detector=self.name, score=0.97, summary="test evidence",
                              kind=self.kind, heatmap=heat)


@register_detector("test_crash", default=False, description="test: kills its process")
class CrashDetector:
    name: ClassVar[str] = "test_crash"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        os._exit(3)  # like a segfaulting decoder: no exception, the process is gone


@register_detector("test_hang", default=False, description="test: never returns")
class HangDetector:
    name: ClassVar[str] = "test_hang"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        time.sleep(3600)
        raise AssertionError("unreachable")


@register_detector("test_flaky", default=False, description="test: crashes on first attempt")
class FlakyDetector:
    """Kills its process the first time it sees a file, succeeds the second time."""

    name: ClassVar[str] = "test_flaky"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        marker = Path(str(media.path) + ".seen")
        if not marker.exists():
            marker.write_text("1")
            os._exit(4)
        return DetectorResult(detector=self.name, score=0.2, summary="second try",
                              kind=self.kind)


@register_detector("test_slow", default=False, description="test: sleeps 0.3 s")
class SlowDetector:
    name: ClassVar[str] = "test_slow"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = "1"

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        time.sleep(float(os.environ.get("ANTIFAKE_TEST_SLOW_S", "0.3")))
        return DetectorResult(detector=self.name, score=None, summary="slow", kind=self.kind)


# -- helpers shared by tests/test_service_*.py and tests/test_sdk.py ----------------------

def make_settings(data_dir: Path, **overrides: object):  # type: ignore[no-untyped-def]
    """Fast, test-friendly service settings (1 analysis process, short leases/timeouts)."""
    from antifake.service.settings import ServiceSettings

    values: dict[str, object] = dict(
        data_dir=data_dir, workers=1, plugin_modules=(PLUGIN,), detectors=("c2pa",),
        job_timeout_s=20.0, lease_s=2.0, max_attempts=2, webhook_allow_private=True,
        sweep_interval_s=3600.0, max_upload_bytes=2 * 1024 * 1024,
    )
    values.update(overrides)
    return ServiceSettings(**values)  # type: ignore[arg-type]


def wait_job(client, job_id: str, headers: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
             timeout_s: float = 30.0) -> dict:
    """Poll GET /v1/jobs/{id} until it is finished (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get(f"/v1/jobs/{job_id}", headers=headers or {})
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in ("succeeded", "failed"):
            return body
        assert time.monotonic() < deadline, f"job {job_id} still {body['status']}"
        time.sleep(0.05)


def submit_jobs(client, png: bytes, detectors: str, n: int = 1,  # type: ignore[no-untyped-def]
                headers: dict[str, str] | None = None) -> list[str]:
    """POST ``n`` copies of ``png`` as one batch to /v1/jobs; the job ids (asserts 202)."""
    files = [("file", (f"f{i}.png", png)) for i in range(n)]
    r = client.post("/v1/jobs", files=files, data={"detectors": detectors},
                    headers=headers or {})
    assert r.status_code == 202, r.text
    return [j["id"] for j in r.json()["jobs"]]


def assert_jobs_survive_a_restart(settings, db_url: str, png: bytes, n: int,  # type: ignore[no-untyped-def]
                                  min_in_flight: int) -> None:
    """Stop the server while ``n`` slow jobs (ANTIFAKE_TEST_SLOW_S set by the caller) are
    running or queued - at least ``min_in_flight`` of them - then start it again: every job
    finishes, and the restart does not count as an attempt."""
    from fastapi.testclient import TestClient

    from antifake.service.api import create_app
    from antifake.service.store import JobStore

    with TestClient(create_app(settings)) as client:
        ids = submit_jobs(client, png, "test_slow,c2pa", n=n)
        deadline = time.monotonic() + 20
        while client.get(f"/v1/jobs/{ids[0]}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    # The server is gone with jobs running and queued.
    store = JobStore(db_url)
    before = store.queue_counts()
    store.dispose()
    assert before["queued"] + before["running"] >= min_in_flight, before
    with TestClient(create_app(settings)) as client:
        finals = [wait_job(client, i) for i in ids]
    assert [j["status"] for j in finals] == ["succeeded"] * n
    assert all(j["attempts"] == 1 for j in finals)  # a restart is not counted as an attempt


def _wait_port(port: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


@contextmanager
def redis_and_celery_worker(tmp_path: Path, **overrides: Any) -> Iterator[Any]:
    """A redis-server on a free loopback port and a Celery prefork worker (concurrency 1)
    for ``make_settings(tmp_path / "data", queue_backend="celery", ...)`` with
    ``overrides``; yields those settings. On exit both are stopped and the worker's last
    output is printed (pytest shows it when the test failed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    redis = subprocess.Popen(
        [str(shutil.which("redis-server")), "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        _wait_port(port)
        settings = make_settings(tmp_path / "data", queue_backend="celery",
                                 broker_url=f"redis://127.0.0.1:{port}/0", **overrides)
        env = {**os.environ, **settings.to_env()}
        tests_dir = Path(__file__).resolve().parent
        env["PYTHONPATH"] = os.pathsep.join([str(tests_dir.parent / "src"), str(tests_dir),
                                             env.get("PYTHONPATH", "")])
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "antifake.service.celery_app", "worker",
             "--pool=prefork", "--concurrency=1", "-Q", "antifake", "--without-gossip",
             "--without-mingle", "--loglevel=warning"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        yield settings
    finally:
        if worker is not None:
            worker.terminate()
            try:
                out, _ = worker.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                out, _ = worker.communicate()
            if out:
                print(out.decode(errors="replace")[-3000:])
        redis.terminate()
        redis.wait(10)


class ServerThread:
    """A real uvicorn server on an ephemeral loopback port, in a thread."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        import socket
        import threading

        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self.server.run,
                                        kwargs={"sockets": [sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self._sock.close()
