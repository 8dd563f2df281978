"""REST API: contract, auth, isolation, limits, webhooks, metrics, retention.

One app (real analysis process, real SQLite) is shared by the module to keep it fast.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from antifake.engine import Engine
from antifake.sdk import verify_webhook
from antifake.service.api import create_app
from antifake.service.auth import create_key
from antifake.service.store import JobStore, utcnow
from service_support import ServerThread, make_settings, wait_job
from synth import write_image, write_video


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    return {
        "png": write_image(d / "a.png"),
        "jpg": write_image(d / "b.jpg", seed=1),
        "mp4": write_video(d / "v.mp4"),
        "junk": _write(d / "junk.bin", b"definitely not an image" * 10),
    }


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("svc"), auth_required=True)
    app = create_app(settings)
    state = app.state.service
    keys = {
        "a": create_key(state.store, settings, "alice"),
        "b": create_key(state.store, settings, "bob"),
        "slow": create_key(state.store, settings, "throttled", rate_limit_per_s=0.01,
                           rate_limit_burst=2),
        "quota": create_key(state.store, settings, "quota", daily_quota=1),
    }
    with TestClient(app) as client:
        yield client, keys, settings


def h(key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {key.api_key}"}


def test_ops_endpoints_and_openapi(service) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = service
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["workers"]["ok"]
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/detect", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/heatmap.png",
            "/v1/jobs/{job_id}/report"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_keys_are_required(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    with open(media["png"], "rb") as fh:
        r = client.post("/v1/detect", files={"file": ("a.png", fh)})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert client.get("/v1/me", headers={"Authorization": "Bearer af_nope_" + "x" * 40}
                      ).status_code == 401
    # A correct key id with a wrong secret is refused too.
    forged = keys["a"].api_key[:-4] + "AAAA"
    assert client.get("/v1/me", headers={"X-API-Key": forged}).status_code == 401
    assert client.get("/v1/me", headers={"X-API-Key": keys["a"].api_key}).json()["name"] == "alice"


def test_keys_are_stored_hashed(service) -> None:  # type: ignore[no-untyped-def]
    _, keys, settings = service
    store = JobStore(settings.db_url)
    rows = {r.key_id: r for r in store.list_keys()}
    row = rows[keys["a"].key_id]
    assert keys["a"].api_key not in row.key_hash and len(row.key_hash) == 64
    store.dispose()


def test_detect_returns_the_cli_json(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    with open(media["png"], "rb") as fh:
        r = client.post("/v1/detect", files={"file": ("a.png", fh, "image/png")},
                        headers=h(keys["a"]))
    assert r.status_code == 200, r.text
    body = r.json()
    expected = Engine(["c2pa"]).analyze(media["png"], display_name="a.png").to_dict()
    assert set(body) == set(expected)
    for k in ("file", "media_type", "verdict", "ai_probability", "generator", "error", "media"):
        assert body[k] == expected[k], k
    assert [d["detector"] for d in body["detectors"]] == ["c2pa"]


def test_detect_bad_media_reports_error_in_result(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    with open(media["junk"], "rb") as fh:
        r = client.post("/v1/detect", files={"file": ("junk.png", fh)}, headers=h(keys["a"]))
    assert r.status_code == 200
    assert r.json()["error"]["code"] == "unsupported_media"
    assert r.json()["verdict"] is None
    r = client.post("/v1/detect", files={"file": ("empty.png", b"")}, headers=h(keys["a"]))
    assert r.json()["error"]["code"] == "empty_file"


def test_bad_options_are_400(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    data = media["png"].read_bytes()
    r = client.post("/v1/detect", files={"file": ("a.png", data)}, data={"detectors": "nope"},
                    headers=h(keys["a"]))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = client.post("/v1/jobs", files={"file": ("a.png", data)}, data={"sampling": "fps=0"},
                    headers=h(keys["a"]))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = client.post("/v1/jobs", data={"detectors": "c2pa"}, headers=h(keys["a"]))
    assert r.status_code in (400, 422)


def test_jobs_end_to_end_with_heatmap_and_report(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    files = [("file", ("a.png", media["png"].read_bytes())),
             ("file", ("v.mp4", media["mp4"].read_bytes()))]
    r = client.post("/v1/jobs", files=files, data={"detectors": "test_heat,c2pa",
                                                    "sampling": "fps=4,max=3"},
                    headers=h(keys["a"]))
    assert r.status_code == 202, r.text
    jobs = r.json()["jobs"]
    assert [j["file"] for j in jobs] == ["a.png", "v.mp4"]
    assert all(j["status"] == "queued" for j in jobs)
    for j in jobs:
        done = wait_job(client, j["id"], h(keys["a"]))
        assert done["status"] == "succeeded", done
        assert done["progress"] == 1.0 and done["has_heatmap"]
        assert done["result"]["verdict"] == "ai_generated"  # test_heat scores 0.97
        png = client.get(f"/v1/jobs/{j['id']}/heatmap.png", headers=h(keys["a"]))
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        alone = client.get(f"/v1/jobs/{j['id']}/heatmap.png?overlay=0", headers=h(keys["a"]))
        assert alone.status_code == 200 and alone.content != png.content
        report = client.get(f"/v1/jobs/{j['id']}/report", headers=h(keys["a"]))
        assert report.status_code == 200 and "text/html" in report.headers["content-type"]
        assert j["file"].split(".")[0] in report.headers["content-disposition"]
    img = jobs[0]["id"]
    assert client.get(f"/v1/jobs/{img}/timeline.png", headers=h(keys["a"])).status_code == 404
    # The single-file form also answers with the job's fields at the top level (web page).
    one = client.post("/v1/jobs", files={"file": ("b.jpg", media["jpg"].read_bytes())},
                      headers=h(keys["a"])).json()
    assert one["id"] == one["jobs"][0]["id"] and one["status"] == "queued"


def test_audio_job_gives_verdict_timeline_spectrogram_and_report(service, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 12: an MP3 goes through the job API like an image: verdict from
    synthetic_speech, a per-window timeline, the spectrogram as its picture, a report."""
    from synth import voice_like, write_audio

    client, keys, _ = service
    mp3 = write_audio(tmp_path / "voice.mp3", voice_like(4.0), codec="libmp3lame")
    job = client.post("/v1/jobs", files={"file": ("voice.mp3", mp3.read_bytes())},
                      data={"detectors": "synthetic_speech,c2pa"}, headers=h(keys["a"])).json()
    done = wait_job(client, job["id"], h(keys["a"]))
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["media_type"] == "audio" and result["verdict"] is not None
    speech = next(d for d in result["detectors"] if d["detector"] == "synthetic_speech")
    assert speech["score"] is not None and len(speech["timeline"]) == 3
    for suffix, magic in (("/frame.png", b"\x89PNG"), ("/timeline.png", b"\x89PNG")):
        r = client.get(f"/v1/jobs/{job['id']}{suffix}", headers=h(keys["a"]))
        assert r.status_code == 200 and r.content.startswith(magic), suffix
    report = client.get(f"/v1/jobs/{job['id']}/report", headers=h(keys["a"]))
    assert report.status_code == 200 and "Spectrogram" in report.text


def test_report_pdf(service, media) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("weasyprint")
    client, keys, _ = service
    job = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                      data={"detectors": "test_heat"}, headers=h(keys["a"])).json()
    wait_job(client, job["id"], h(keys["a"]))
    r = client.get(f"/v1/jobs/{job['id']}/report?format=pdf", headers=h(keys["a"]))
    assert r.status_code == 200 and r.content.startswith(b"%PDF")


def test_one_key_cannot_see_another_keys_job(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    job = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                      headers=h(keys["a"])).json()
    wait_job(client, job["id"], h(keys["a"]))
    for suffix in ("", "/heatmap.png", "/report", "/frame.png"):
        r = client.get(f"/v1/jobs/{job['id']}{suffix}", headers=h(keys["b"]))
        assert r.status_code == 404, suffix
        assert r.json()["error"]["code"] == "not_found"
    assert client.get(f"/v1/jobs/{job['id']}", headers=h(keys["a"])).status_code == 200


def test_idempotency_key_returns_the_same_jobs(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    hdr = {**h(keys["b"]), "Idempotency-Key": "submit-42"}
    first = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                        headers=hdr)
    again = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                        headers=hdr)
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["jobs"][0]["id"] == again.json()["jobs"][0]["id"]


def test_rate_limit_answers_429_with_retry_after(service) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    codes = [client.get("/v1/me", headers=h(keys["slow"])).status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and codes[2:] == [429, 429]
    r = client.get("/v1/me", headers=h(keys["slow"]))
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1


def test_daily_quota(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    data = media["png"].read_bytes()
    assert client.post("/v1/detect", files={"file": ("a.png", data)},
                       headers=h(keys["quota"])).status_code == 200
    r = client.post("/v1/detect", files={"file": ("a.png", data)}, headers=h(keys["quota"]))
    assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"


def test_declared_oversize_body_is_refused_before_reading(service) -> None:  # type: ignore[no-untyped-def]
    client, keys, settings = service
    big = b"\0" * (settings.max_upload_bytes + 1)
    r = client.post("/v1/detect", files={"file": ("big.png", big)}, headers=h(keys["a"]))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    # Small-body routes have their own, much smaller cap.
    r = client.post("/v1/jobs/x", content=b"x" * 100_000, headers=h(keys["a"]))
    assert r.status_code == 413


def test_streamed_oversize_upload_is_cut_off(tmp_path: Path) -> None:
    """Chunked upload without Content-Length: the server answers 413 after ~the limit,
    without waiting for (or storing) the rest."""
    settings = make_settings(tmp_path, auth_required=False, max_upload_bytes=256 * 1024)
    with ServerThread(create_app(settings)) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        boundary = "b0undary"
        head = (f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
        part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"x.png\"\r\n\r\n").encode()
        sock.sendall(head)
        sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        chunk = b"\0" * 65536
        sent, total = 0, 64 * 1024 * 1024
        response = b""
        sock.settimeout(0.05)
        try:
            while sent < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                try:
                    response += sock.recv(65536)
                except TimeoutError:
                    continue
                if response:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        try:
            while b"\r\n\r\n" not in response:
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        except OSError:
            pass
        sock.close()
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert sent < 8 * 1024 * 1024  # stopped long before the 64 MiB the client offered
        assert not any(settings.tmp_dir.iterdir())


def test_webhook_is_signed_with_the_keys_secret(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    received: list[tuple[dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
        job = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                          data={"webhook_url": url}, headers=h(keys["b"])).json()
        wait_job(client, job["id"], h(keys["b"]))
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received, "webhook not delivered"
        headers, body = received[0]
        secret = client.get("/v1/me", headers=h(keys["b"])).json()["webhook_secret"]
        assert secret == keys["b"].webhook_secret
        assert verify_webhook(secret, headers["x-antifake-timestamp"], body,
                              headers["x-antifake-signature"])
        assert not verify_webhook(keys["a"].webhook_secret, headers["x-antifake-timestamp"],
                                  body, headers["x-antifake-signature"])
        payload = json.loads(body)
        assert payload["event"] == "job.finished" and payload["job"]["id"] == job["id"]
        assert payload["job"]["status"] == "succeeded"
        # Delivery runs beside the dispatcher: its status lands just after the request.
        while (wait_job(client, job["id"], h(keys["b"]))["webhook_status"] is None
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert wait_job(client, job["id"], h(keys["b"]))["webhook_status"] == "delivered"
    finally:
        httpd.shutdown()


def test_webhook_to_private_address_refused_by_default(tmp_path: Path, media) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, auth_required=False, webhook_allow_private=False)
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                        data={"webhook_url": "http://127.0.0.1:9/hook"})
        assert r.status_code == 400 and "non-public" in r.json()["error"]["message"]
        # Local single-user mode: no key needed, and keyed jobs stay invisible to it.
        state = client.app.state.service  # type: ignore[attr-defined]
        key = create_key(state.store, settings, "k")
        job = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                          headers=h(key)).json()
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert client.get(f"/v1/jobs/{job['id']}", headers=h(key)).status_code == 200
        anon = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())})
        assert anon.status_code == 202
        assert wait_job(client, anon.json()["id"])["status"] == "succeeded"


def test_metrics(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = service
    client.post("/v1/detect", files={"file": ("a.png", media["png"].read_bytes())},
                headers=h(keys["a"]))
    # Keys are required on this service, so are they for /metrics (issue 11 item 13).
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers=h(keys["a"])).text
    assert 'antifake_http_requests_total{method="POST",route="/v1/detect",status="200"}' in text
    assert "antifake_http_request_duration_seconds_bucket" in text
    assert 'antifake_detector_duration_seconds_count{detector="c2pa"}' in text
    assert 'antifake_jobs{status="queued"}' in text


def test_retention_sweeper_deletes_uploads_results_and_rows(service, media) -> None:  # type: ignore[no-untyped-def]
    client, keys, settings = service
    job = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                      data={"detectors": "test_heat"}, headers=h(keys["a"])).json()
    wait_job(client, job["id"], h(keys["a"]))
    state = client.app.state.service  # type: ignore[attr-defined]
    stored = state.store.get_job(job["id"])
    heat = state.store.get_result(job["id"]).heatmaps_path
    assert Path(stored.upload_path).exists() and Path(heat).exists()
    with state.store.session() as s:
        from antifake.service.store import JobRow

        s.get(JobRow, job["id"]).finished_at = utcnow() - timedelta(
            seconds=settings.retention_s + 60)
    assert state.sweeper.sweep_once() >= 1
    assert not Path(stored.upload_path).exists() and not Path(heat).exists()
    assert client.get(f"/v1/jobs/{job['id']}", headers=h(keys["a"])).status_code == 404



def test_web_page_is_mounted_and_busy_server_sheds_load(tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<html>antifake page</html>")
    settings = make_settings(tmp_path / "data", auth_required=False, web_dir=web,
                             max_pending_detect=0)
    with TestClient(create_app(settings)) as client:
        assert "antifake page" in client.get("/").text
        assert client.get("/healthz").status_code == 200  # API routes win over the mount
        r = client.post("/v1/detect", files={"file": ("a.png", b"x")})
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["error"]["code"] == "busy"


def test_idempotency_key_race_loser_gets_the_winners_jobs(service, media,  # type: ignore[no-untyped-def]
                                                          monkeypatch) -> None:
    """A request that checked for the key before the other one committed its jobs (the
    check is simulated as having found nothing) answers with the winner's jobs: no second
    job, and its upload deleted."""
    client, keys, settings = service
    store = client.app.state.service.store
    hdr = {**h(keys["a"]), "Idempotency-Key": "race-7"}
    first = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                        headers=hdr)
    assert first.status_code == 202
    uploads_before = sorted(settings.uploads_dir.rglob("*.bin"))
    real_find = store.find_by_idempotency_key
    calls: list[str] = []

    def find_nothing_first(principal: str, key: str):  # type: ignore[no-untyped-def]
        calls.append(key)
        return [] if len(calls) == 1 else real_find(principal, key)

    monkeypatch.setattr(store, "find_by_idempotency_key", find_nothing_first)
    again = client.post("/v1/jobs", files={"file": ("a.png", media["png"].read_bytes())},
                        headers=hdr)
    assert again.status_code == 200 and len(calls) == 2
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
    assert len(real_find(store.get_job(first.json()["jobs"][0]["id"]).principal,
                         "race-7")) == 1
    assert sorted(settings.uploads_dir.rglob("*.bin")) == uploads_before


def test_security_headers_host_allow_list_and_public_metrics(tmp_path: Path) -> None:
    """Issue 11 item 13: nosniff / frame-ancestors headers on every answer; a keyless local
    server answers only its own host names (no DNS rebinding); /metrics can be opened."""
    from antifake.service.cli import local_hosts

    settings = make_settings(tmp_path / "d", auth_required=False,
                             allowed_hosts=local_hosts("127.0.0.1"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        r = client.get("/healthz")
        assert r.status_code == 200
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert client.get("/v1/me", headers={"Host": "localhost:8000"}).status_code == 200
        evil = client.get("/v1/me", headers={"Host": "attacker.example"})
        assert evil.status_code == 400 and evil.json()["error"]["code"] == "invalid_request"
        assert "webhook_secret" not in evil.text
    public = make_settings(tmp_path / "e", auth_required=True, metrics_public=True)
    with TestClient(create_app(public)) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/me").status_code == 401


def test_delete_job_removes_files_and_refuses_while_running(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """DELETE /v1/jobs/{id}: upload, result and heatmaps go; a running job answers 409."""
    settings = make_settings(tmp_path / "svc", job_timeout_s=3.0, max_attempts=1,
                             auth_required=False)
    app = create_app(settings)
    png = write_image(tmp_path / "a.png").read_bytes()
    with TestClient(app) as client:
        done = client.post("/v1/jobs", files={"file": ("a.png", png)},
                           data={"detectors": "test_heat"}).json()
        assert wait_job(client, done["id"])["status"] == "succeeded"
        upload = next(settings.uploads_dir.glob(f"*/{done['id']}.bin"))
        heatmaps = next(settings.results_dir.glob(f"{done['id']}*"))
        listed = client.get("/v1/jobs").json()
        assert [j["id"] for j in listed["jobs"]] == [done["id"]]
        assert listed["next_cursor"] is None and "result" not in listed["jobs"][0]
        hang = client.post("/v1/jobs", files={"file": ("b.png", png)},
                           data={"detectors": "test_hang"}).json()
        deadline = time.monotonic() + 10
        while client.get(f"/v1/jobs/{hang['id']}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = client.delete(f"/v1/jobs/{hang['id']}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "job_running"
        assert client.delete(f"/v1/jobs/{done['id']}").status_code == 204
        assert not upload.exists() and not heatmaps.exists()
        assert client.get(f"/v1/jobs/{done['id']}").status_code == 404
        assert client.delete(f"/v1/jobs/{done['id']}").status_code == 404
        assert wait_job(client, hang["id"])["status"] == "failed"  # the 3 s timeout
        assert client.delete(f"/v1/jobs/{hang['id']}").status_code == 204


def test_uploads_spool_in_the_data_dir_and_a_full_disk_is_507(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 10: multipart uploads over 1 MiB spooled to the process TMPDIR, so a
    full TMPDIR answered 400 'error parsing the body'. They now spool in the service's tmp
    dir, and an upload that cannot fit is refused 507 before its body is read."""
    import collections
    import tempfile

    import antifake.service.api as api

    settings = make_settings(tmp_path / "svc", auth_required=False,
                             max_upload_bytes=8 * 1024 * 1024)
    app = create_app(settings)
    big = write_image(tmp_path / "big.png")
    # Trailing bytes after IEND (ignored by decoders) take it over the 1 MiB spool size.
    big.write_bytes(big.read_bytes() + bytes(1_300_000))
    with TestClient(app) as client:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmp"))
        r = client.post("/v1/detect", files={"file": ("big.png", big.read_bytes())},
                        data={"detectors": "c2pa"})
        assert r.status_code == 200, r.text
        usage = collections.namedtuple("usage", "total used free")
        monkeypatch.setattr(api.shutil, "disk_usage", lambda _p: usage(10**9, 10**9, 1000))
        r = client.post("/v1/jobs", files={"file": ("big.png", big.read_bytes())})
        assert r.status_code == 507 and r.json()["error"]["code"] == "insufficient_storage"
        assert client.get("/v1/jobs").json()["jobs"] == []


def test_pictures_and_reports_are_drawn_a_few_at_a_time(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 4: picture and report requests decode the upload in the API process;
    at most render_concurrency run at once, the rest wait, then get 503 + Retry-After."""
    import threading as th

    import antifake.report as report

    settings = make_settings(tmp_path / "svc", auth_required=False, render_concurrency=1,
                             render_wait_s=0.3)
    app = create_app(settings)
    vid = write_video(tmp_path / "v.mp4")
    running = {"now": 0, "max": 0}
    lock = th.Lock()
    real = report.render_timeline_png

    def slow_timeline(result):  # type: ignore[no-untyped-def]
        with lock:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
        time.sleep(1.0)
        with lock:
            running["now"] -= 1
        return real(result)

    monkeypatch.setattr(report, "render_timeline_png", slow_timeline)
    with TestClient(app) as client:
        job = client.post("/v1/jobs", files={"file": ("v.mp4", vid.read_bytes())},
                          data={"detectors": "test_heat"}).json()
        assert wait_job(client, job["id"])["status"] == "succeeded"
        codes: list[int] = []
        headers: list[str | None] = []

        def get() -> None:
            r = client.get(f"/v1/jobs/{job['id']}/timeline.png")
            codes.append(r.status_code)
            headers.append(r.headers.get("retry-after"))

        threads = [th.Thread(target=get) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert running["max"] == 1
    assert sorted(codes)[0] in (200, 404) and codes.count(503) >= 1
    assert "2" in headers
