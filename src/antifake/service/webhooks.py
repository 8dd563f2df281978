"""Signed job-finished webhooks.

Each delivery is a JSON POST with ``X-Antifake-Timestamp: <unix seconds>`` and
``X-Antifake-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``; the
secret is the calling key's webhook secret (``GET /v1/me``). Signing the timestamp lets
receivers reject replays (see :func:`antifake.sdk.verify_webhook`).

Webhooks are the service's only outgoing requests to user-chosen URLs, so targets that
resolve to loopback/private/link-local addresses are refused unless
``webhook_allow_private`` is set.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Antifake-Signature"
TIMESTAMP_HEADER = "X-Antifake-Timestamp"


class WebhookURLError(ValueError):
    pass


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def validate_webhook_url(url: str, allow_private: bool) -> None:
    """Raise :class:`WebhookURLError` unless ``url`` is http(s) to an allowed host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookURLError("webhook_url must be an http(s) URL with a host")
    if len(url) > 2000:
        raise WebhookURLError("webhook_url is too long")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise WebhookURLError(f"webhook host does not resolve: {parts.hostname}") from exc
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global:
            raise WebhookURLError(
                f"webhook host {parts.hostname} resolves to a non-public address ({addr}); "
                "set webhook_allow_private to allow it"
            )


def deliver(
    url: str, secret: str, payload: dict[str, Any], *, timeout_s: float, allow_private: bool,
    attempts: int = 3,
) -> str:
    """POST ``payload``; returns a short status for the job row (never raises)."""
    import httpx

    try:
        validate_webhook_url(url, allow_private)  # again: DNS may have changed since submit
    except WebhookURLError as exc:
        return f"refused: {exc}"[:100]
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    status = "not attempted"
    for attempt in range(attempts):
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "antifake-webhook/1",
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(secret, ts, body),
        }
        try:
            resp = httpx.post(url, content=body, headers=headers, timeout=timeout_s,
                              follow_redirects=False)
            status = f"http {resp.status_code}"
            if resp.status_code < 500 and resp.status_code != 429:
                return "delivered" if resp.status_code < 300 else status
        except httpx.HTTPError as exc:
            status = f"error: {type(exc).__name__}"
        time.sleep(min(8.0, 0.5 * 2**attempt))
    log.warning("webhook to %s failed: %s", url, status)
    return status
