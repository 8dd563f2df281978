"""Signed job-finished webhooks.

Each delivery is a JSON POST with ``X-Antifake-Timestamp: <unix seconds>`` and
``X-Antifake-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``; the
secret is the calling key's webhook secret (``GET /v1/me``). Signing the timestamp lets
receivers reject replays (see :func:`antifake.sdk.verify_webhook`).

Webhooks are the service's only outgoing requests to user-chosen URLs, so targets that
resolve to loopback/private/link-local addresses are refused unless
``webhook_allow_private`` is set. The host is resolved once per delivery and the request
is sent to the address that was checked (``Host`` header and TLS SNI/certificate check
keep the name): a DNS answer that changes between the check and the connection
("DNS rebinding") cannot redirect the POST to an internal address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Antifake-Signature"
TIMESTAMP_HEADER = "X-Antifake-Timestamp"


class WebhookURLError(ValueError):
    pass


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class PinnedTarget:
    """Where one delivery goes: ``url`` with the host replaced by the checked address."""

    url: str
    host_header: str
    sni_hostname: str | None  # https only: name for SNI and the certificate check


def _parse(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookURLError("webhook_url must be an http(s) URL with a host")
    if len(url) > 2000:
        raise WebhookURLError("webhook_url is too long")
    try:
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as exc:
        raise WebhookURLError("webhook_url has an invalid port") from exc
    return parts


# IPv6 prefixes that carry an IPv4 address in their low 32 bits (NAT64 well-known and
# local-use prefixes, RFC 6052 / 8215); 6to4, Teredo and IPv4-mapped forms are unwrapped
# by the ipaddress module itself.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for a global unicast address whose embedded IPv4 (if any) is too."""
    if isinstance(addr, ipaddress.IPv6Address) and any(addr in net for net in _NAT64):
        # A NAT64 address is as public as the IPv4 address it translates to.
        return _public(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if addr.ipv4_mapped:
            embedded.append(addr.ipv4_mapped)
        if addr.sixtofour:
            embedded.append(addr.sixtofour)
        if addr.teredo:
            embedded.extend(addr.teredo)
        return all(_public(v4) for v4 in embedded)
    return True


def resolve_webhook_url(url: str, allow_private: bool) -> PinnedTarget:
    """Resolve ``url``'s host once, check every address, and pin the first one.

    Raises :class:`WebhookURLError` for a bad URL, a host that does not resolve, or (unless
    ``allow_private``) one with any non-public address.
    """
    parts = _parse(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise WebhookURLError(f"webhook host does not resolve: {host}") from exc
    addrs = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addrs:
        raise WebhookURLError(f"webhook host does not resolve: {host}")
    if not allow_private:
        for addr in addrs:
            if not _public(addr):
                raise WebhookURLError(
                    f"webhook host {host} resolves to a non-public address ({addr}); "
                    "set webhook_allow_private to allow it"
                )
    pinned = addrs[0]
    literal = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc.rsplit("@", 1)[-1]  # no userinfo in the Host header
    return PinnedTarget(
        url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host_header=host_header,
        sni_hostname=host if parts.scheme == "https" else None,
    )


def validate_webhook_url(url: str, allow_private: bool) -> None:
    """Raise :class:`WebhookURLError` unless ``url`` is http(s) to an allowed host."""
    if allow_private:
        _parse(url)
        return
    resolve_webhook_url(url, allow_private)


def deliver(
    url: str, secret: str, payload: dict[str, Any], *, timeout_s: float, allow_private: bool,
    attempts: int = 3, attempt_deadline_s: float | None = None,
) -> str:
    """POST ``payload``; returns a short status for the job row (never raises).

    ``timeout_s`` bounds each network operation; ``attempt_deadline_s`` (default
    3 x ``timeout_s``) bounds a whole attempt: a receiver that trickles its answer a byte
    at a time (each read within ``timeout_s``) is cut off when the deadline passes - the
    client is closed under the request, which then fails within one read timeout.
    """
    import threading

    import httpx

    try:
        # Again at delivery (DNS may have changed since submit), and the request goes to
        # the address checked here, not to a second resolution.
        target = resolve_webhook_url(url, allow_private)
    except WebhookURLError as exc:
        return f"refused: {exc}"[:100]
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    deadline_s = attempt_deadline_s if attempt_deadline_s is not None else 3 * timeout_s
    status = "not attempted"
    for attempt in range(attempts):
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "antifake-webhook/1",
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(secret, ts, body),
            "Host": target.host_header,
        }
        cut = threading.Event()
        try:
            with httpx.Client(timeout=timeout_s, follow_redirects=False,
                              trust_env=False) as client:
                def cut_off(client: httpx.Client = client,
                            cut: threading.Event = cut) -> None:
                    cut.set()
                    client.close()

                watchdog = threading.Timer(deadline_s, cut_off)
                watchdog.daemon = True
                watchdog.start()
                try:
                    resp = client.post(target.url, content=body, headers=headers,
                                       extensions=extensions)
                finally:
                    watchdog.cancel()
            status = f"http {resp.status_code}"
            if resp.status_code < 500 and resp.status_code != 429:
                return "delivered" if resp.status_code < 300 else status
        except Exception as exc:  # noqa: BLE001 - httpx errors, or the cut-off's fallout
            status = (f"error: over {deadline_s:g} s" if cut.is_set()
                      else f"error: {type(exc).__name__}")
        if attempt + 1 < attempts:
            time.sleep(min(8.0, 0.5 * 2**attempt))
    log.warning("webhook to %s failed: %s", url, status)
    return status
