"""API keys: ``af_<key id>_<secret>``, stored only as HMAC-SHA256(pepper, key).

Keys carry 256 bits of randomness, so a fast keyed hash is enough (no password-style
stretching needed); the pepper lives outside the database (``<data_dir>/pepper`` or the
``ANTIFAKE_PEPPER`` setting), so a leaked database alone does not allow offline checks.
The key id (a public prefix) makes lookup a primary-key read and the comparison constant
time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass

from antifake.service.settings import ServiceSettings
from antifake.service.store import LOCAL_PRINCIPAL, ApiKeyRow, JobStore

KEY_PREFIX = "af_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key, or the anonymous single user of local mode."""

    id: str  # key id, or "local"
    name: str
    webhook_secret: str
    rate_limit_per_s: float | None  # None: unlimited
    rate_limit_burst: int | None
    daily_quota: int | None

    @property
    def is_local(self) -> bool:
        return self.id == LOCAL_PRINCIPAL


def hash_key(pepper: str, key: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def _split_key(key: str) -> str | None:
    """The key id of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX):].partition("_")
    if not sep or not key_id or len(secret) < 20 or len(key_id) > 32:
        return None
    return key_id


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    api_key: str  # plaintext: shown once, never stored
    webhook_secret: str


def create_key(
    store: JobStore,
    settings: ServiceSettings,
    name: str,
    *,
    rate_limit_per_s: float | None = None,
    rate_limit_burst: int | None = None,
    daily_quota: int | None = None,
) -> CreatedKey:
    """Create and store a key; returns the plaintext (the only time it exists).

    Raises ValueError for a rate that is not a finite number > 0, a burst < 1 or a
    negative quota (a zero rate used to turn every request after the burst into a 500).
    """
    if rate_limit_per_s is not None and not (
            math.isfinite(rate_limit_per_s) and rate_limit_per_s > 0):
        raise ValueError(f"rate must be a finite number > 0 (got {rate_limit_per_s})")
    if rate_limit_burst is not None and rate_limit_burst < 1:
        raise ValueError(f"burst must be >= 1 (got {rate_limit_burst})")
    if daily_quota is not None and daily_quota < 0:
        raise ValueError(f"daily quota must be >= 0 (got {daily_quota})")
    key_id = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    webhook_secret = "whsec_" + secrets.token_urlsafe(32)
    store.add_key(ApiKeyRow(
        key_id=key_id, name=name, key_hash=hash_key(settings.resolved_pepper(), plaintext),
        webhook_secret=webhook_secret, rate_limit_per_s=rate_limit_per_s,
        rate_limit_burst=rate_limit_burst, daily_quota=daily_quota,
    ))
    return CreatedKey(key_id=key_id, api_key=plaintext, webhook_secret=webhook_secret)


def create_api_key(name: str, settings: ServiceSettings | None = None) -> str:
    """Admin entry point (``antifake keys create NAME``): create a key, return the plaintext.

    Settings default to the environment (``ANTIFAKE_DATA_DIR``, ``ANTIFAKE_DATABASE_URL``...),
    i.e. the same database the server uses.
    """
    settings = settings or ServiceSettings.from_env()
    settings.ensure_dirs()
    store = JobStore(settings.db_url)
    try:
        return create_key(store, settings, name).api_key
    finally:
        store.dispose()


class Authenticator:
    """Resolves a presented key to a :class:`Principal` (with a short positive cache)."""

    CACHE_S = 10.0  # a revoked key stops working within this many seconds

    def __init__(self, store: JobStore, settings: ServiceSettings) -> None:
        self.store = store
        self.settings = settings
        self.pepper = settings.resolved_pepper()
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self.local = Principal(
            id=LOCAL_PRINCIPAL, name="local user", webhook_secret=self._local_webhook_secret(),
            rate_limit_per_s=None, rate_limit_burst=None, daily_quota=None,
        )

    def _local_webhook_secret(self) -> str:
        # Derived, so it is stable across restarts without another file.
        return "whsec_" + hash_key(self.pepper, "local-webhook-secret")[:43]

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal for a key; the local user when no key is presented and auth is off.

        None means "refuse with 401". A key that is presented is always checked, even in
        local mode, so keys keep their isolation there too.
        """
        if not presented:
            return None if self.settings.auth_required else self.local
        key_hash = hash_key(self.pepper, presented)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_hash)
            if hit and hit[0] > now:
                return hit[1]
        key_id = _split_key(presented)
        if key_id is None:
            return None
        row = self.store.get_key(key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.key_hash, key_hash):
            return None
        s = self.settings
        principal = Principal(
            id=row.key_id, name=row.name, webhook_secret=row.webhook_secret,
            rate_limit_per_s=row.rate_limit_per_s if row.rate_limit_per_s is not None
            else s.rate_limit_per_s,
            rate_limit_burst=row.rate_limit_burst if row.rate_limit_burst is not None
            else s.rate_limit_burst,
            daily_quota=row.daily_quota if row.daily_quota is not None else s.daily_quota,
        )
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_hash] = (now + self.CACHE_S, principal)
        return principal


def presented_key(headers: dict[str, str]) -> str | None:
    """The key from ``Authorization: Bearer ...`` or ``X-API-Key``."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None
