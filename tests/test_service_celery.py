"""Scale-out backend end to end: real redis-server + real Celery worker process.

Skipped only when redis-server is not installed (CI installs it: apt-get install redis-server).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from antifake.service.api import create_app
from service_support import make_settings, wait_job
from synth import write_image

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


def test_job_runs_through_redis_and_a_celery_worker(tmp_path: Path) -> None:
    port = _free_port()
    redis = subprocess.Popen(
        [str(REDIS), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        _wait_port(port)
        settings = make_settings(tmp_path / "data", auth_required=False, queue_backend="celery",
                                 broker_url=f"redis://127.0.0.1:{port}/0")
        env = {**os.environ, **settings.to_env()}
        tests_dir = str(Path(__file__).parent)
        src_dir = str(Path(__file__).parent.parent / "src")
        env["PYTHONPATH"] = os.pathsep.join([src_dir, tests_dir, env.get("PYTHONPATH", "")])
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "antifake.service.celery_app", "worker",
             "--pool=prefork", "--concurrency=1", "-Q", "antifake", "--without-gossip",
             "--without-mingle", "--loglevel=warning"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        png = write_image(tmp_path / "a.png").read_bytes()
        with TestClient(create_app(settings)) as client:
            r = client.post("/v1/jobs", files=[("file", ("a.png", png)), ("file", ("b.png", png))],
                            data={"detectors": "test_heat,c2pa"})
            assert r.status_code == 202, r.text
            for job in r.json()["jobs"]:
                done = wait_job(client, job["id"], timeout_s=60)
                assert done["status"] == "succeeded", done
                assert done["result"]["verdict"] == "ai_generated" and done["has_heatmap"]
                png_out = client.get(f"/v1/jobs/{job['id']}/heatmap.png")
                assert png_out.status_code == 200
            # A worker process that dies mid-job: Celery redelivers, the lease expires, the
            # second attempt succeeds.
            r = client.post("/v1/jobs", files={"file": ("c.png", png)},
                            data={"detectors": "test_flaky"})
            flaky = wait_job(client, r.json()["id"], timeout_s=60)
            assert flaky["status"] == "succeeded" and flaky["attempts"] == 2, flaky
            # Synchronous detect in celery mode is a job the API waits for.
            r = client.post("/v1/detect", files={"file": ("a.png", png)})
            assert r.status_code == 200 and r.json()["verdict"] == "uncertain"
            ready = client.get("/readyz").json()
            assert ready["checks"]["workers"]["ok"], ready
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
