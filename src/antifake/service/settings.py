"""Service configuration: one frozen dataclass, filled from code, CLI flags or environment.

Every field can be set from the environment as ``ANTIFAKE_<FIELD>`` (upper case), which is
how a Celery worker started with ``antifake worker`` or ``celery -A ...`` picks up the same
configuration as the API server.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from antifake.config import FrameSampling, Limits

QueueBackend = Literal["local", "celery"]

ENV_PREFIX = "ANTIFAKE_"


def _default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "antifake"


@dataclass(frozen=True)
class ServiceSettings:
    """All knobs of ``antifake serve`` / ``antifake worker``.

    Security defaults: ``auth_required=True`` here (a library default must be safe);
    ``antifake serve`` turns it off only when it binds a loopback address and no
    ``--auth`` flag was given (single-user local mode).
    """

    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str | None = None  # default: sqlite:///<data_dir>/antifake.db
    queue_backend: QueueBackend = "local"
    broker_url: str = "redis://127.0.0.1:6379/0"  # Celery broker (queue_backend="celery")
    workers: int = 2  # analysis processes (local) / Celery concurrency
    plugin_modules: tuple[str, ...] = ()  # imported in analysis processes (extra detectors)

    auth_required: bool = True
    pepper: str | None = None  # HMAC key for API-key hashes; default: <data_dir>/pepper
    # Per-key defaults (a key may override them); the anonymous local user is unlimited.
    rate_limit_per_s: float = 10.0
    rate_limit_burst: int = 40
    daily_quota: int | None = 10_000  # analysed files per key per UTC day; None: unlimited

    max_upload_bytes: int = 512 * 1024**2  # whole request body of an upload, multipart incl.
    max_small_body_bytes: int = 64 * 1024  # every other request
    max_files_per_job_request: int = 50
    max_pending_detect: int = 32  # synchronous detects waiting for a process; then 503

    detectors: tuple[str, ...] | None = None  # None: registry defaults
    default_sampling: str = "fps=2,max=64"
    job_timeout_s: float = 300.0  # wall clock per file; the analysis process is killed after
    max_attempts: int = 3  # a job whose worker crashed/hung this often is failed
    # Address-space cap (RLIMIT_AS, MiB) of every process that runs the engine; 0 = none.
    # An idle analysis process maps ~580 MiB; 3072 admits ~60 Mpx images (36 Mpx peaks at
    # ~2.2 GiB virtual) and fails larger/costlier files with too_large (docs/service.md).
    analysis_memory_mb: int = 3072
    # Pixels per image, checked from the header before any decode: a deterministic
    # `too_large` for what the memory cap above cannot hold (an 80 Mpx PNG needs ~4.1 GiB
    # of address space; whether it failed used to depend on the process's history).
    max_image_pixels: int = 50_000_000
    lease_s: float = 30.0  # a running job whose lease is not renewed for this long is retried
    # Pictures and reports (frame.png, heatmap.png, timeline.png, report) decode the upload
    # in the API process: at most this many at once (each is bounded by limits(): pixels,
    # JPEG scans, frames), the others wait up to render_wait_s, then get 503 + Retry-After.
    # Frames analysed per file whatever `sampling` asks (spread over the clip when its
    # duration is known): `sampling=all` on a 1-hour video ran into the job timeout and was
    # retried (issue 11 item 5). ~7,200 frames take 2-5 min on 2 cores.
    max_frames_per_request: int = 7_200
    render_concurrency: int = 2
    render_wait_s: float = 20.0
    # /readyz answers 503 when a job has been queued this long and no job has started,
    # progressed or finished meanwhile (a stalled queue); None = 2 x job_timeout_s.
    queue_stall_s: float | None = None
    requeue_running_on_startup: bool = True  # single-server default; see docs/scaling.md

    retention_s: float = 24 * 3600.0  # uploads, results and job rows are deleted after this
    sweep_interval_s: float = 300.0

    webhook_timeout_s: float = 5.0
    webhook_allow_private: bool = False  # allow webhooks to loopback/private addresses
    # Host header values accepted (None: any). `antifake serve` in keyless local mode sets
    # the loopback names, so a web page on another origin cannot reach the API through
    # DNS rebinding (its requests carry the attacker's host name).
    allowed_hosts: tuple[str, ...] | None = None
    # /metrics (verdict counts, queue depth) needs a key when keys are required, unless
    # this is set (e.g. a Prometheus scraper on a private network).
    metrics_public: bool = False
    web_dir: Path | None = None  # static page; default: the antifake/web package folder

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.queue_backend not in ("local", "celery"):
            raise ValueError(
                f"queue_backend must be 'local' or 'celery', not {self.queue_backend!r}")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.analysis_memory_mb < 0:
            raise ValueError("analysis_memory_mb must be >= 0 (0 = no cap)")
        if self.max_image_pixels < 1:
            raise ValueError("max_image_pixels must be >= 1")
        if self.max_frames_per_request < 1:
            raise ValueError("max_frames_per_request must be >= 1")
        if self.render_concurrency < 1:
            raise ValueError("render_concurrency must be >= 1")
        FrameSampling.parse(self.default_sampling)  # fail at startup, not per request

    # -- derived paths -------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'antifake.db'}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    def limits(self) -> Limits:
        """Engine limits: a file can never be bigger than an upload, nor take longer, nor
        have more than max_frames_per_request frames analysed."""
        return Limits(max_file_bytes=self.max_upload_bytes, timeout_s=self.job_timeout_s,
                      max_image_pixels=self.max_image_pixels,
                      max_frames_analysed=self.max_frames_per_request)

    def ensure_dirs(self) -> None:
        for d in (self.data_dir, self.uploads_dir, self.results_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)

    def resolved_pepper(self) -> str:
        """The configured pepper, else one generated once into ``<data_dir>/pepper`` (0600)."""
        if self.pepper:
            return self.pepper
        path = self.data_dir / "pepper"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_hex(32).encode())
            finally:
                os.close(fd)
        return path.read_text().strip()

    def replace(self, **changes: Any) -> ServiceSettings:
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """Environment variables that make :meth:`from_env` rebuild these settings."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                value = "none"
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "1" if value else "0"
            out[ENV_PREFIX + f.name.upper()] = str(value)
        return out

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> ServiceSettings:
        """Defaults, then ``ANTIFAKE_*`` variables, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _coerce(name: str, type_str: str, raw: str) -> Any:
    if "None" in type_str and raw.strip().lower() in ("", "none"):
        return None
    if "bool" in type_str:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "tuple" in type_str:
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    if type_str.startswith("int"):
        return int(raw)
    if type_str.startswith("float"):
        return float(raw)
    if "Path" in type_str:
        return Path(raw)
    return raw
