"""Scale-out backend end to end: real redis-server + real Celery worker process.

Skipped only when redis-server is not installed (CI installs it: apt-get install redis-server).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from antifake.service.api import create_app
from service_support import redis_and_celery_worker, wait_job
from synth import write_image

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server not installed")


def test_job_runs_through_redis_and_a_celery_worker(tmp_path: Path) -> None:
    with redis_and_celery_worker(tmp_path, auth_required=False) as settings:
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
