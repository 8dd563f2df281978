"""Webhook deliveries go to the address that was checked (no DNS-rebinding window)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from antifake.service import webhooks
from antifake.service.webhooks import WebhookURLError, deliver, resolve_webhook_url, sign


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Any:
    _Recorder.received = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _rebinding_resolver(first: str, later: str) -> tuple[Any, list[str]]:
    """A getaddrinfo that answers ``first`` once and ``later`` afterwards (DNS rebinding)
    for names; address literals (what the pinned connection looks up) resolve as usual."""
    calls: list[str] = []
    real = socket.getaddrinfo

    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host.replace(".", "").isdigit():
            return real(host, port, *args, **kwargs)
        calls.append(host)
        addr = first if len(calls) == 1 else later
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port))]

    return fake, calls


def test_delivery_uses_the_checked_address_and_keeps_the_host_name(
        receiver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    port = receiver.server_address[1]
    fake, calls = _rebinding_resolver("127.0.0.1", "10.255.255.1")
    monkeypatch.setattr(webhooks.socket, "getaddrinfo", fake)
    status = deliver(f"http://hooks.example:{port}/hook?k=1", "s3cret", {"id": "j1"},
                     timeout_s=5, allow_private=True, attempts=1)
    # A second resolution would have sent the POST to 10.255.255.1 (unroutable): it was
    # delivered, so the connection used the one answer that was checked.
    assert status == "delivered"
    assert calls == ["hooks.example"]
    (req,) = _Recorder.received
    assert req["path"] == "/hook?k=1"
    assert req["headers"]["Host"] == f"hooks.example:{port}"
    ts = req["headers"][webhooks.TIMESTAMP_HEADER]
    assert req["headers"][webhooks.SIGNATURE_HEADER] == sign("s3cret", ts, req["body"])


def test_private_answer_at_delivery_is_refused_without_a_request(
        receiver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    port = receiver.server_address[1]
    fake, _ = _rebinding_resolver("127.0.0.1", "127.0.0.1")
    monkeypatch.setattr(webhooks.socket, "getaddrinfo", fake)
    status = deliver(f"http://hooks.example:{port}/hook", "s", {"id": "j1"}, timeout_s=5,
                     allow_private=False, attempts=1)
    assert status.startswith("refused: webhook host hooks.example resolves to a non-public")
    assert _Recorder.received == []


def test_pinned_target_for_https_and_ipv6(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:4700::1111", port, 0, 0))]

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", fake)
    t = resolve_webhook_url("https://user:pw@hooks.example/h", allow_private=False)
    assert t.url == "https://[2606:4700::1111]/h"
    assert t.host_header == "hooks.example"
    assert t.sni_hostname == "hooks.example"  # certificate checked against the name


@pytest.mark.parametrize("url", ["ftp://x.example/", "http:///nohost", "http://x.example:99999/"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookURLError):
        resolve_webhook_url(url, allow_private=True)


@pytest.mark.parametrize("literal", [
    "[64:ff9b::7f00:1]",      # NAT64 form of 127.0.0.1
    "[64:ff9b::a9fe:a9fe]",   # NAT64 form of 169.254.169.254 (cloud metadata)
    "[2002:7f00:1::]",        # 6to4 form of 127.0.0.1
    "[::ffff:10.0.0.1]",      # IPv4-mapped private address
    "224.0.0.1",              # multicast
    "[ff02::1]",              # IPv6 multicast
])
def test_embedded_and_multicast_addresses_are_refused(literal: str) -> None:
    """Issue 11 item 9: forms of loopback/link-local hidden in IPv6, and multicast."""
    with pytest.raises(WebhookURLError, match="non-public"):
        resolve_webhook_url(f"http://{literal}/hook", allow_private=False)


def test_nat64_of_a_public_address_is_allowed() -> None:
    t = resolve_webhook_url("http://[64:ff9b::808:808]/hook", allow_private=False)  # 8.8.8.8
    assert t.url == "http://[64:ff9b::808:808]/hook"


def _trickle_server(delay_s: float):  # type: ignore[no-untyped-def]
    """A receiver that answers one byte every ``delay_s`` seconds (for ~60 s)."""
    import socketserver

    class Trickle(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(5)
            try:
                self.request.recv(65536)
                for b in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" * 10:
                    self.request.sendall(bytes([b]))
                    time.sleep(delay_s)
            except OSError:
                pass

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Trickle)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_a_trickling_receiver_is_cut_off_at_the_attempt_deadline() -> None:
    """Issue 11 item 1: each read came within the 5 s timeout, so a receiver sending one
    byte every 4 s held the delivery (and the job dispatcher) forever."""
    srv = _trickle_server(0.3)  # every read well within the 1 s timeout
    try:
        t0 = time.monotonic()
        status = deliver(f"http://127.0.0.1:{srv.server_address[1]}/h", "s", {"a": 1},
                         timeout_s=1.0, allow_private=True, attempts=1,
                         attempt_deadline_s=2.0)
        elapsed = time.monotonic() - t0
    finally:
        srv.shutdown()
    assert status.startswith("error"), status
    assert elapsed < 2.0 + 1.0 + 1.5, elapsed  # deadline + one read timeout + slack


def test_job_dispatch_does_not_wait_for_the_webhook(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The dispatcher hands the delivery to the webhook pool and returns at once."""
    from antifake.service import jobs

    started = threading.Event()
    release = threading.Event()

    def slow_delivery(store, settings, job_id):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(10)

    monkeypatch.setattr(jobs, "_deliver_now", slow_delivery)
    t0 = time.monotonic()
    jobs._notify(None, None, "job-1")  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 0.5
    assert started.wait(5)
    release.set()


def test_webhook_outbox_redelivers_after_a_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 7: a kill between saving a result and delivering its webhook left
    webhook_status null forever (at-most-once). The outbox sends it again."""
    from datetime import timedelta

    from antifake.service.jobs import redeliver_pending_webhooks
    from antifake.service.settings import ServiceSettings
    from antifake.service.store import JobRow, JobStore, NewJob, utcnow

    _Recorder.received = []
    httpd = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
        settings = ServiceSettings(data_dir=tmp_path, webhook_allow_private=True,
                                   webhook_timeout_s=2.0)
        store = JobStore(settings.db_url)
        store.create_jobs("local", [NewJob("crashed", "a.png", "/x"),
                                    NewJob("fresh", "b.png", "/y")], {}, url, max_attempts=1)
        for job_id in ("crashed", "fresh"):
            assert store.claim("w", lease_s=30) is not None
            store.save_result(job_id, {"file": "a.png", "verdict": "authentic"}, None)
        with store.session() as s:  # "crashed" finished 5 minutes ago, never delivered
            s.get(JobRow, "crashed").finished_at = utcnow() - timedelta(minutes=5)
        assert redeliver_pending_webhooks(store, settings, grace_s=60) == 1
        deadline = time.monotonic() + 10
        while (store.get_job("crashed").webhook_status in (None, "retrying")
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert store.get_job("crashed").webhook_status == "delivered"
        assert store.get_job("fresh").webhook_status is None  # its own delivery may be running
        assert len(_Recorder.received) == 1
        assert redeliver_pending_webhooks(store, settings, grace_s=60) == 0  # done: not again
    finally:
        httpd.shutdown()
