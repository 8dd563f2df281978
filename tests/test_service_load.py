"""Load and hostile uploads through the real HTTP server: nothing lost, overload shed with
503 + Retry-After (never 500), hostile files answered with the same stable codes as the
engine.

Sizes scale with ``ANTIFAKE_LOAD_JOBS`` (default 60) and ``ANTIFAKE_LOAD_CLIENTS`` (8);
the defaults keep the file under ~30 s on 2 shared cores.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import hostile
from antifake.service.api import create_app
from antifake.service.auth import create_key
from service_support import ServerThread, make_settings
from synth import write_image

N_JOBS = int(os.environ.get("ANTIFAKE_LOAD_JOBS", "60"))
N_CLIENTS = int(os.environ.get("ANTIFAKE_LOAD_CLIENTS", "8"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = make_settings(tmp_path_factory.mktemp("load"), auth_required=True, workers=2,
                             detectors=("c2pa", "metadata"), rate_limit_per_s=10_000.0,
                             rate_limit_burst=10_000, daily_quota=None, max_pending_detect=4,
                             job_timeout_s=20.0, max_upload_bytes=64 * 2**20)
    app = create_app(settings)
    store = app.state.service.store
    keys = [create_key(store, settings, f"client{i}") for i in range(N_CLIENTS)]
    png = write_image(tmp_path_factory.mktemp("m") / "a.png", width=160, height=120)
    with ServerThread(app) as srv:
        yield {"url": srv.url, "keys": keys, "png": png.read_bytes(), "app": app}


def _auth(key: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.api_key}"}


def test_concurrent_clients_lose_no_job(server: dict[str, Any]) -> None:
    """N_CLIENTS keys submit N_JOBS jobs concurrently and poll them to the end: every job
    succeeds, each key sees exactly its own jobs, and each job has one result."""
    url, keys, png = server["url"], server["keys"], server["png"]
    submit_ms: list[float] = []
    lock = threading.Lock()

    def submit(i: int) -> tuple[int, str]:
        key = keys[i % len(keys)]
        with httpx.Client(base_url=url, headers=_auth(key), timeout=60) as c:
            t0 = time.perf_counter()
            r = c.post("/v1/jobs", files={"file": (f"{i}.png", png)})
            with lock:
                submit_ms.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 202, r.text
            return i % len(keys), r.json()["id"]

    t_start = time.perf_counter()
    with ThreadPoolExecutor(N_CLIENTS) as ex:
        submitted = list(ex.map(submit, range(N_JOBS)))
    assert len({job for _, job in submitted}) == N_JOBS

    def finish(item: tuple[int, str]) -> dict[str, Any]:
        key_index, job_id = item
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=url, headers=_auth(keys[key_index]), timeout=30) as c:
            while True:
                body = c.get(f"/v1/jobs/{job_id}").json()
                if body["status"] in ("succeeded", "failed"):
                    return body
                assert time.monotonic() < deadline, body
                time.sleep(0.1)

    with ThreadPoolExecutor(N_CLIENTS) as ex:
        done = list(ex.map(finish, submitted))
    wall = time.perf_counter() - t_start
    assert [d["status"] for d in done] == ["succeeded"] * N_JOBS
    assert all(d["result"]["error"] is None for d in done)
    # isolation under load: another key's job is a 404
    other = keys[1] if len(keys) > 1 else keys[0]
    own_key, job_id = submitted[0]
    if keys[own_key] is not other:
        r = httpx.get(f"{url}/v1/jobs/{job_id}", headers=_auth(other), timeout=10)
        assert r.status_code == 404
    print(f"load: {N_JOBS} jobs from {N_CLIENTS} clients in {wall:.1f} s "
          f"({N_JOBS / wall:.1f} jobs/s); submit latency median "
          f"{statistics.median(submit_ms):.0f} ms, max {max(submit_ms):.0f} ms")


def test_detect_overload_is_shed_with_503_not_500(server: dict[str, Any]) -> None:
    """More synchronous detects than max_pending_detect (4) at once: the excess is answered
    503 busy + Retry-After, everything else 200; no 500, no hang."""
    url, keys = server["url"], server["keys"]
    # a slower-to-analyse file so the detects overlap: a 1.5 Mpx PNG
    big = write_image(Path(os.environ.get("TMPDIR", "/tmp")) / f"load-{os.getpid()}.png",
                      width=1500, height=1000)
    data = big.read_bytes()
    big.unlink()

    def detect(i: int) -> tuple[int, str | None]:
        r = httpx.post(f"{url}/v1/detect", files={"file": ("x.png", data)},
                       headers=_auth(keys[i % len(keys)]), timeout=60)
        return r.status_code, r.headers.get("retry-after")

    with ThreadPoolExecutor(16) as ex:
        answers = list(ex.map(detect, range(24)))
    codes = [c for c, _ in answers]
    assert set(codes) <= {200, 503}, codes
    assert codes.count(200) >= 4
    assert all(ra is not None for c, ra in answers if c == 503)
    print(f"overload: {codes.count(200)} x 200, {codes.count(503)} x 503 of 24 concurrent")
    # and the service is still healthy afterwards
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200


HOSTILE_VIA_API = [c for c in hostile.cases()
                   if c.name.split("/")[0] in ("bomb", "meta", "polyglot", "not_media")
                   and c.slow_timeout_s is None]


def test_hostile_uploads_get_the_engines_codes(server: dict[str, Any],
                                               tmp_path: Path) -> None:
    """The hostile corpus's bombs, hostile metadata, polyglots and non-media, uploaded to
    /v1/detect: each answers 200 with the same stable error code (or a clean result) the
    engine gives, within the job timeout; the server stays ready."""
    url, key = server["url"], server["keys"][0]
    bad: list[str] = []
    slowest = 0.0
    for case in HOSTILE_VIA_API:
        d = tmp_path / str(abs(hash(case.name)))
        d.mkdir()
        path = case.build(d)
        t0 = time.perf_counter()
        r = httpx.post(f"{url}/v1/detect", files={"file": (path.name, path.read_bytes())},
                       headers=_auth(key), timeout=60)
        slowest = max(slowest, time.perf_counter() - t0)
        if r.status_code == 413:  # larger than this server's upload cap: also a clean answer
            continue
        if r.status_code != 200:
            bad.append(f"{case.name}: HTTP {r.status_code} {r.text[:200]}")
            continue
        err = r.json()["error"]
        outcome = err["code"] if err else "ok"
        if outcome not in case.expect:
            bad.append(f"{case.name}: {outcome} ({(err or {}).get('message', '')[:120]})")
    print(f"hostile via API: {len(HOSTILE_VIA_API)} uploads, slowest {slowest:.2f} s")
    assert not bad, "\n".join(bad)
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
