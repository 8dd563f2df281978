"""SDK: real uvicorn on a loopback port for the happy paths; a mock transport for retries."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

import antifake
from antifake.sdk import (
    APIConnectionError,
    APIError,
    AsyncClient,
    AuthenticationError,
    Client,
    DetectionResult,
    NotFoundError,
    RateLimitError,
)
from antifake.sdk._core import ClientCore
from antifake.service.api import create_app
from antifake.service.auth import create_key
from service_support import ServerThread, make_settings
from synth import write_image, write_video


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("sdk"), auth_required=True)
    app = create_app(settings)
    key = create_key(app.state.service.store, settings, "sdk")
    other = create_key(app.state.service.store, settings, "other")
    with ServerThread(app) as srv:
        yield srv.url, key.api_key, other.api_key


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("m")
    return {"png": write_image(d / "a.png"), "mp4": write_video(d / "v.mp4")}


def test_lazy_export() -> None:
    assert antifake.Client is Client and antifake.AsyncClient is AsyncClient


def test_detect_path_and_bytes(server, media) -> None:  # type: ignore[no-untyped-def]
    url, key, _ = server
    with Client(url, api_key=key) as c:
        r = c.detect(media["png"])
        assert isinstance(r, DetectionResult) and r.ok
        assert r.file == "a.png" and r.media_type == "image" and r.verdict == "uncertain"
        assert r.detectors[0].detector == "c2pa" and r.raw["verdict"] == "uncertain"
        r2 = c.detect(media["png"].read_bytes(), filename="mem.png", detectors=["test_heat"])
        assert r2.file == "mem.png" and r2.verdict == "ai_generated"
        bad = c.detect(b"garbage" * 10, filename="x.png")
        assert not bad.ok and bad.error is not None and bad.error.code == "unsupported_media"


def test_jobs_wait_progress_and_downloads(server, media) -> None:  # type: ignore[no-untyped-def]
    url, key, other = server
    seen: list[tuple[str, float]] = []
    with Client(url, api_key=key) as c:
        jobs = c.submit_jobs([media["png"], media["mp4"]], detectors="test_heat,c2pa",
                             sampling="fps=4,max=2")
        assert [j.status for j in jobs] == ["queued", "queued"]
        done = c.wait_for_job(jobs[1].id, progress_callback=lambda j: seen.append(
            (j.status, j.progress)), timeout=60)
        assert done.status == "succeeded" and done.result is not None
        assert done.result.media_type == "video" and done.has_heatmap
        assert seen[-1] == ("succeeded", 1.0)
        assert c.heatmap_png(done.id).startswith(b"\x89PNG")
        assert c.heatmap_png(done.id, overlay=False).startswith(b"\x89PNG")
        assert b"<html" in c.report(done.id).lower()
        with pytest.raises(NotFoundError):
            c.timeline_png(c.wait_for_job(jobs[0].id, timeout=60).id)
    with Client(url, api_key=other) as c2, pytest.raises(NotFoundError) as exc:
        c2.get_job(jobs[0].id)
    assert exc.value.code == "not_found"


def test_list_and_delete_jobs(server, media, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """GET /v1/jobs pages through the caller's own jobs, newest first; DELETE removes a
    job, its upload and its heatmaps, and another key can neither list nor delete it."""
    url, key, other = server
    with Client(url, api_key=other) as c2:
        mine = [c2.submit_job(media["png"], detectors="test_heat") for _ in range(3)]
        for j in mine:
            c2.wait_for_job(j.id, timeout=60)
        seen: list[str] = []
        page = c2.list_jobs(limit=2)
        while True:
            assert len(page.jobs) <= 2 and all(j.result is None for j in page.jobs)
            seen += [j.id for j in page.jobs]
            if page.next_cursor is None:
                break
            page = c2.list_jobs(limit=2, cursor=page.next_cursor)
        assert set(j.id for j in mine) <= set(seen) and len(seen) == len(set(seen))
        created = [j.created_at for j in c2.list_jobs(limit=200).jobs]
        assert created == sorted(created, reverse=True)
        assert {j.status for j in c2.list_jobs(status="succeeded").jobs} == {"succeeded"}
    with Client(url, api_key=key) as c:
        assert not set(seen) & {j.id for j in c.list_jobs(limit=200).jobs}
        with pytest.raises(NotFoundError):
            c.delete_job(mine[0].id)  # someone else's job: 404, not deleted
    with Client(url, api_key=other) as c2:
        assert c2.get_job(mine[0].id).has_heatmap
        c2.delete_job(mine[0].id)
        with pytest.raises(NotFoundError):
            c2.get_job(mine[0].id)
        with pytest.raises(NotFoundError):
            c2.delete_job(mine[0].id)
        assert mine[0].id not in {j.id for j in c2.list_jobs(limit=200).jobs}
    with Client(url, api_key=key) as c, pytest.raises(APIError) as exc:
        c.list_jobs(cursor="not-a-cursor")
    assert exc.value.status == 400 and exc.value.code == "invalid_request"


def test_errors(server, media) -> None:  # type: ignore[no-untyped-def]
    url, key, _ = server
    with Client(url) as anon, pytest.raises(AuthenticationError):
        anon.detect(media["png"])
    with Client(url, api_key=key) as c, pytest.raises(APIError) as exc:
        c.detect(media["png"], detectors="no_such_detector")
    assert exc.value.status == 400 and exc.value.code == "invalid_request"
    assert "no_such_detector" in exc.value.message
    with Client("http://127.0.0.1:9", max_retries=1) as dead, pytest.raises(APIConnectionError):
        dead.health()


def test_async_client(server, media) -> None:  # type: ignore[no-untyped-def]
    url, key, _ = server

    async def main() -> tuple[str | None, str]:
        async with AsyncClient(url, api_key=key) as c:
            r = await c.detect(media["png"])
            job = await c.submit_job(media["png"], detectors=["test_heat"])
            done = await c.wait_for_job(job.id, timeout=60)
            return r.verdict, done.status

    assert asyncio.run(main()) == ("uncertain", "succeeded")


def _mock_client(responses: list[httpx.Response], sleeps: list[float],
                 monkeypatch: pytest.MonkeyPatch, max_retries: int = 3) -> Client:
    calls = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        return next(calls)

    monkeypatch.setattr("antifake.sdk._sync.time.sleep", sleeps.append)
    http = httpx.Client(base_url="http://test", transport=httpx.MockTransport(handler))
    return Client("http://test", api_key="k", http_client=http, max_retries=max_retries)


def test_retries_5xx_and_429_respecting_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    ok = httpx.Response(200, json={"status": "ok"})
    c = _mock_client([httpx.Response(503), httpx.Response(
        429, headers={"Retry-After": "2"}, json={"error": {"code": "rate_limited",
                                                           "message": "slow down"}}), ok],
        sleeps, monkeypatch)
    assert c.health() == {"status": "ok"}
    assert len(sleeps) == 2 and sleeps[1] >= 2.0


def test_gives_up_with_rate_limit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    limited = httpx.Response(429, headers={"Retry-After": "1"},
                             json={"error": {"code": "rate_limited", "message": "slow"}})
    c = _mock_client([limited] * 3, sleeps, monkeypatch, max_retries=2)
    with pytest.raises(RateLimitError) as exc:
        c.health()
    assert exc.value.retry_after == 1.0 and len(sleeps) == 2
    # A spent daily quota (Retry-After: 3600) is not waited for.
    quota = httpx.Response(429, headers={"Retry-After": "3600"},
                           json={"error": {"code": "quota_exceeded", "message": "q"}})
    sleeps.clear()
    c = _mock_client([quota], sleeps, monkeypatch)
    with pytest.raises(RateLimitError) as exc:
        c.health()
    assert exc.value.code == "quota_exceeded" and sleeps == []


def test_no_retry_on_client_errors() -> None:
    core = ClientCore("http://x", None)
    assert core.retry_delay(0, httpx.Response(400)) is None
    assert core.retry_delay(0, httpx.Response(404)) is None
    assert core.retry_delay(0, None) is not None  # connection error: retry
    assert core.retry_delay(3, None) is None  # retries used up


def test_submit_sends_an_idempotency_key() -> None:
    call = ClientCore("http://x", None).submit_jobs([b"abc"])
    assert len(call.headers["Idempotency-Key"]) >= 16
    with httpx.Client(base_url="http://x") as http:
        request, opened = call.build(http)
    assert request.headers["Idempotency-Key"] == call.headers["Idempotency-Key"]
    assert b'name="file"' in request.read() and opened == []
