"""REST API security, beyond tests/test_service_api.py: every /v1 route refuses missing,
malformed and revoked keys; no cross-key access through any artifact or the idempotency
key; no path traversal through upload names or job ids; uploads refused before the body is
read, with flat server memory; the HTML report escapes hostile metadata.
"""

from __future__ import annotations

import html.parser
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin

from antifake.service.api import create_app
from antifake.service.auth import CreatedKey, create_key
from service_support import make_settings, wait_job
from synth import textured_rgb, write_image

ROOT = Path(__file__).resolve().parent.parent


def h(key: CreatedKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.api_key}"}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = make_settings(tmp_path_factory.mktemp("sec"), auth_required=True,
                             rate_limit_per_s=1000.0, rate_limit_burst=1000)
    app = create_app(settings)
    state = app.state.service
    keys = {n: create_key(state.store, settings, n) for n in ("alice", "bob", "revoked")}
    state.store.revoke_key(keys["revoked"].key_id)
    png = write_image(tmp_path_factory.mktemp("m") / "a.png").read_bytes()
    with TestClient(app) as client:
        job = client.post("/v1/jobs", files={"file": ("a.png", png)},
                          data={"detectors": "test_heat"}, headers=h(keys["alice"])).json()
        wait_job(client, job["id"], h(keys["alice"]))
        yield {"client": client, "keys": keys, "settings": settings, "job": job["id"],
               "png": png, "state": state}


def _v1_routes(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [(m.upper(), p) for p, ops in spec["paths"].items() if p.startswith("/v1/")
            for m in ops]


def test_every_v1_route_refuses_bad_keys(svc: dict[str, Any]) -> None:
    client, keys, job = svc["client"], svc["keys"], svc["job"]
    routes = _v1_routes(client)
    assert len(routes) >= 8
    bad_headers: list[dict[str, Any]] = [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        {"Authorization": "Bearer af_" + "x" * 40},
        {"X-API-Key": "af_" + "A" * 10_000},
        {"X-API-Key": keys["alice"].api_key + " "},  # not trimmed for X-API-Key
        {"Authorization": "Bearer " + keys["alice"].api_key[:-1]},
        h(keys["revoked"]),
        # raw non-ASCII header bytes
        {"Authorization": ("Bearer " + keys["alice"].api_key.replace("_", "_\u00ff", 1))
         .encode("latin-1")},
    ]
    tried = 0
    for method, path in routes:
        url = path.replace("{job_id}", job)
        for hdr in bad_headers:
            r = client.request(method, url, headers=hdr)
            assert r.status_code == 401, (method, url, hdr.keys(), r.status_code, r.text[:200])
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers.get("www-authenticate") == "Bearer"
            tried += 1
    assert tried == len(routes) * len(bad_headers)


def test_no_cross_key_access_to_any_artifact(svc: dict[str, Any]) -> None:
    client, keys, job = svc["client"], svc["keys"], svc["job"]
    urls = [f"/v1/jobs/{job}{s}" for s in (
        "", "/frame.png", "/frame.png?detector=test_heat", "/heatmap.png",
        "/heatmap.png?overlay=0", "/heatmap.png?detector=test_heat&opacity=1",
        "/timeline.png", "/report", "/report?format=pdf")]
    for url in urls:
        mine = client.get(url, headers=h(keys["alice"]))
        theirs = client.get(url, headers=h(keys["bob"]))
        assert theirs.status_code == 404, url
        assert theirs.json()["error"]["code"] == "not_found"
        # same answer as for a job id that does not exist: existence is not revealed
        ghost = client.get(url.replace(job, "0" * len(job)), headers=h(keys["bob"]))
        assert ghost.status_code == 404 and ghost.json()["error"]["code"] == "not_found"
        assert mine.status_code in (200, 404), url  # timeline: 404 no_timeline for a still
        if mine.status_code == 404:
            assert mine.json()["error"]["code"] != "not_found"


def test_idempotency_keys_are_per_api_key(svc: dict[str, Any]) -> None:
    client, keys, png = svc["client"], svc["keys"], svc["png"]
    hdr = {"Idempotency-Key": "shared-name-1"}
    a = client.post("/v1/jobs", files={"file": ("a.png", png)},
                    headers={**h(keys["alice"]), **hdr})
    b = client.post("/v1/jobs", files={"file": ("b.png", png)},
                    headers={**h(keys["bob"]), **hdr})
    assert a.status_code == 202 and b.status_code == 202, (a.text, b.text)
    assert a.json()["id"] != b.json()["id"]
    assert b.json()["file"] == "b.png"


def _multipart(filename: bytes, content: bytes, boundary: bytes = b"XyZ123") -> bytes:
    return (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"" + filename + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            + content + b"\r\n--" + boundary + b"--\r\n")


HOSTILE_NAMES: list[bytes] = [
    b"../../etc/passwd",
    b"..\\..\\windows\\win.ini",
    b"/etc/passwd",
    b"....//....//x.png",
    b"a\x00b.png",
    b"\xff\xfe\x80.png",
    b"caf\xe9.png",
    b"x\r\nX-Injected: 1.png",
    b"<script>alert(1)</script>.png",
    b"..",
    b".",
    b"%2e%2e%2fescape.png",
    b"CON",
    b"x" * 5000 + b".png",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[repr(n[:24]) for n in HOSTILE_NAMES])
def test_upload_names_never_become_paths(svc: dict[str, Any], name: bytes) -> None:
    client, keys, settings, png = svc["client"], svc["keys"], svc["settings"], svc["png"]
    body = _multipart(name, png)
    r = client.post("/v1/jobs", content=body, headers={
        **h(keys["alice"]), "Content-Type": "multipart/form-data; boundary=XyZ123"})
    assert r.status_code in (202, 400, 422), (r.status_code, r.text[:300])
    if r.status_code != 202:
        assert r.json()["error"]["code"] == "invalid_request"
        return
    job = r.json()
    shown = job["file"]
    assert "/" not in shown and "\\" not in shown and "\x00" not in shown
    # "." and ".." may stay as display names: they are never joined to a path (below)
    assert "\r" not in shown and "\n" not in shown and shown != ""
    assert len(shown) <= 255
    stored = svc["state"].store.get_job(job["id"])
    upload = Path(stored.upload_path).resolve()
    assert upload.is_relative_to(settings.uploads_dir.resolve())
    assert upload.name == f"{job['id']}.bin"
    wait_job(client, job["id"], h(keys["alice"]))
    rep = client.get(f"/v1/jobs/{job['id']}/report", headers=h(keys["alice"]))
    assert rep.status_code == 200
    disposition = rep.headers["content-disposition"]
    m = re.fullmatch(r'attachment; filename="([A-Za-z0-9._ -]+)"', disposition)
    assert m, disposition
    # the data directory holds only what the service itself names
    allowed = re.compile(r"(antifake\.db(-wal|-shm|-journal)?|pepper"
                         r"|uploads/[0-9a-f]{2}/[0-9a-f]{32}\.bin|results/[0-9a-f]{32}\.npz)")
    stray = [str(p.relative_to(settings.data_dir)) for p in settings.data_dir.rglob("*")
             if p.is_file() and not allowed.fullmatch(str(p.relative_to(settings.data_dir)))]
    assert stray == []


BAD_JOB_IDS = [
    "..", "..%2F..%2Fantifake.db", "%2e%2e%2f%2e%2e%2fpepper", "..%5C..%5Cpepper",
    "a%00b", "%00", "'%20OR%20'1'%3D'1", "1;DROP%20TABLE%20jobs", "%ff%fe", "x" * 4000,
    "%E2%80%AE", "{job_id}", "*", "%25",
]


@pytest.mark.parametrize("job_id", BAD_JOB_IDS, ids=[j[:20] for j in BAD_JOB_IDS])
def test_hostile_job_ids_are_plain_404(svc: dict[str, Any], job_id: str) -> None:
    client, keys, settings = svc["client"], svc["keys"], svc["settings"]
    pepper = settings.resolved_pepper()
    for suffix in ("", "/report", "/heatmap.png", "/frame.png", "/timeline.png"):
        r = client.get(f"/v1/jobs/{job_id}{suffix}", headers=h(keys["alice"]))
        assert r.status_code in (404, 405, 422), (job_id, suffix, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")
        assert pepper not in r.text and "SQLite" not in r.text and "Traceback" not in r.text
    assert client.get("/v1/jobs/" + svc["job"], headers=h(keys["alice"])).status_code == 200


# -- limits before the body is read, with a real server ----------------------------------


def _raw_request(port: int, head: bytes, body_chunks: Iterator[bytes] | None = None,
                 timeout_s: float = 5.0) -> tuple[bytes, float, int]:
    """Send ``head`` (and optionally stream a body until the server answers); return
    (response head, seconds to the answer, body bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    t0 = time.perf_counter()
    sock.sendall(head)
    sent = 0
    response = b""
    sock.settimeout(0.02 if body_chunks is not None else timeout_s)
    try:
        for chunk in body_chunks or iter(()):
            sock.sendall(chunk)
            sent += len(chunk)
            try:
                response += sock.recv(65536)
            except TimeoutError:
                continue
            if response:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(timeout_s)
    try:
        while b"\r\n\r\n" not in response:
            data = sock.recv(65536)
            if not data:
                break
            response += data
    except OSError:
        pass
    elapsed = time.perf_counter() - t0
    sock.close()
    return response, elapsed, sent


def _rss_kib(pid: int, field: str = "VmHWM") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.fixture(scope="module")
def server_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """uvicorn in its own process (so its memory can be measured), auth on, 64 MiB cap."""
    data = tmp_path_factory.mktemp("srv")
    settings = make_settings(data, auth_required=True, max_upload_bytes=64 * 1024 * 1024,
                             rate_limit_per_s=1000.0, rate_limit_burst=1000)
    env = {**os.environ, **settings.to_env(),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    from antifake.service.store import JobStore

    settings.ensure_dirs()
    store = JobStore(settings.db_url)
    key = create_key(store, settings, "mem")
    store.dispose()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "antifake.service.api:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "server down"
                time.sleep(0.1)
        yield {"port": port, "pid": proc.pid, "key": key, "settings": settings}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _upload_head(port: int, key: str | None, length: int | None) -> bytes:
    lines = [b"POST /v1/jobs HTTP/1.1", b"Host: 127.0.0.1",
             b"Content-Type: multipart/form-data; boundary=XyZ123"]
    if key:
        lines.append(b"Authorization: Bearer " + key.encode())
    lines.append(b"Content-Length: %d" % length if length is not None
                 else b"Transfer-Encoding: chunked")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_refusals_come_before_the_body(server_proc: dict[str, Any]) -> None:
    """A 10 GiB declared upload is answered at once (headers only): 401 without a key,
    413 with one; the server never waits for the body."""
    port, key = server_proc["port"], server_proc["key"].api_key
    for api_key, expect in ((None, b"401"), (key, b"413")):
        head, elapsed, _ = _raw_request(port, _upload_head(port, api_key, 10 * 1024**3))
        assert head.startswith(b"HTTP/1.1 " + expect), head[:200]
        assert elapsed < 2.0, elapsed


def test_server_memory_stays_flat_for_big_and_oversized_uploads(
        server_proc: dict[str, Any]) -> None:
    """Measured on the server process (VmHWM, its peak RSS): a 48 MiB upload under the
    64 MiB cap streamed in, and a 1 GiB chunked upload cut off at the cap."""
    port, key, pid = server_proc["port"], server_proc["key"].api_key, server_proc["pid"]
    _raw_request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    before = _rss_kib(pid)
    size = 48 * 1024 * 1024
    prefix = (b"--XyZ123\r\nContent-Disposition: form-data; name=\"file\"; "
              b"filename=\"big.bin\"\r\n\r\n")
    suffix = b"\r\n--XyZ123--\r\n"
    chunk = os.urandom(1024 * 1024)

    def body() -> Iterator[bytes]:
        yield prefix
        for _ in range(size // len(chunk)):
            yield chunk
        yield suffix

    # Content-Length upload within the limit: accepted (202), streamed to disk.
    head = _upload_head(port, key, len(prefix) + size + len(suffix))
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head)
    for part in body():
        sock.sendall(part)
    resp = sock.recv(65536)
    sock.close()
    assert resp.startswith(b"HTTP/1.1 202"), resp[:300]
    after_accepted = _rss_kib(pid)

    # Chunked upload that never ends: cut off near the cap, nothing kept.
    def endless() -> Iterator[bytes]:
        yield b"%x\r\n%s\r\n" % (len(prefix), prefix)
        for _ in range(1024):
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)

    resp2, _, sent = _raw_request(port, _upload_head(port, key, None), endless(),
                                  timeout_s=30)
    assert resp2.startswith(b"HTTP/1.1 413"), resp2[:200]
    assert sent < 200 * 1024 * 1024
    after_cut = _rss_kib(pid)
    grew_mib = (max(after_accepted, after_cut) - before) / 1024
    print(f"server peak RSS before {before / 1024:.1f} MiB, after 48 MiB upload "
          f"{after_accepted / 1024:.1f} MiB, after cut-off {after_cut / 1024:.1f} MiB "
          f"(client sent {sent / 2**20:.0f} MiB)")
    assert grew_mib < 24, grew_mib


# -- report escaping ----------------------------------------------------------------------

PAYLOADS = [
    "<script>alert('x1')</script>",
    '"><img src=x onerror=alert(2)>',
    "</pre></section><iframe src=javascript:alert(3)>",
    "{{ 7*7 }}{% raw %}",
    "<!--",
    "<svg/onload=alert(4)>",
]


def _hostile_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    for i, p in enumerate(PAYLOADS):
        info.add_text(f"Comment{i}", p)
    info.add_itxt("Description", PAYLOADS[1], lang="en", tkey=PAYLOADS[0])
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        'xmp:CreatorTool="&lt;script&gt;alert(5)&lt;/script&gt;"/></rdf:RDF></x:xmpmeta>'
    )
    info.add_itxt("XML:com.adobe.xmp", xmp)
    exif = Image.Exif()
    exif[0x0131] = PAYLOADS[0]  # Software
    exif[0x010F] = PAYLOADS[2]  # Make
    buf = io.BytesIO()
    Image.fromarray(textured_rgb(64, 48)).save(buf, format="PNG", pnginfo=info, exif=exif)
    return buf.getvalue()


class _TagCollector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def test_report_html_escapes_hostile_metadata(svc: dict[str, Any]) -> None:
    client, keys = svc["client"], svc["keys"]
    r = client.post("/v1/jobs", files={"file": ("<b>name</b>.png", _hostile_png())},
                    data={"detectors": "test_heat,metadata"}, headers=h(keys["alice"]))
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"], h(keys["alice"]))
    assert job["status"] == "succeeded", job
    page = client.get(f"/v1/jobs/{job['id']}/report", headers=h(keys["alice"])).text
    # The payloads are shown (escaped), so the test really exercises the metadata path.
    assert "&lt;script&gt;alert(&#39;x1&#39;)&lt;/script&gt;" in page or \
        "&lt;script&gt;alert(&#x27;x1&#x27;)&lt;/script&gt;" in page, "payload not rendered"
    parser = _TagCollector()
    parser.feed(page)
    names = [t for t, _ in parser.tags]
    assert "script" not in names and "iframe" not in names and "svg" not in names
    for tag, attrs in parser.tags:
        for attr, value in attrs:
            assert not attr.startswith("on"), (tag, attr)
            if attr in ("src", "href"):
                assert (value or "").startswith(("data:", "#")), (tag, attr, value)
    assert parser.comments == [] or all("alert" not in c for c in parser.comments)
    assert "{{ 7*7 }}" in page  # shown literally, never evaluated as a template
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp and "default-src 'none'" in csp.group(1)


def test_docs_work_offline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 10: /docs loads Swagger UI from this server (pinned swagger-ui-bundle), not a
    CDN, so it works without internet; /redoc (CDN-only) is off."""
    from fastapi.testclient import TestClient

    from antifake.service.api import create_app
    from service_support import make_settings

    app = create_app(make_settings(tmp_path, auth_required=False))
    with TestClient(app) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower() and "http" not in page.text
        assert "/docs-assets/swagger-ui-bundle.js" in page.text
        js = client.get("/docs-assets/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert client.get("/docs-assets/swagger-ui.css").status_code == 200
        assert client.get("/openapi.json").json()["info"]["title"] == "antifake"
        assert client.get("/redoc").status_code == 404
