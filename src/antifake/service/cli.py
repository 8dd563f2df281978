"""``antifake serve``, ``antifake worker`` and ``antifake keys`` (registered lazily by
:mod:`antifake.cli`).

Authentication default of ``serve``: keys are required unless the server binds only a
loopback address (127.0.0.1 / ::1 / localhost), which is the single-user local mode.
``--auth`` forces keys on; ``--no-auth`` turns them off even on other addresses (with a
warning: anyone who can reach the port can then use it).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import click

from antifake.service.settings import ServiceSettings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _settings(**overrides: Any) -> ServiceSettings:
    return ServiceSettings.from_env(**{k: v for k, v in overrides.items() if v is not None})


def local_hosts(host: str) -> tuple[str, ...]:
    """Host header names a keyless local server answers: the loopback names and the bound
    address. Anything else is a page on another origin reaching us (DNS rebinding)."""
    bound = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return tuple(dict.fromkeys(("localhost", "127.0.0.1", "[::1]", bound.lower())))


def _common_options(fn: Any) -> Any:
    fn = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                      default=None, envvar="ANTIFAKE_DATA_DIR",
                      help="Uploads, results and the SQLite database "
                           "[default: ~/.local/share/antifake].")(fn)
    fn = click.option("--database-url", default=None, envvar="ANTIFAKE_DATABASE_URL",
                      help="SQLAlchemy URL, e.g. postgresql+psycopg://... "
                           "[default: SQLite in the data dir].")(fn)
    fn = click.option("--broker-url", default=None, envvar="ANTIFAKE_BROKER_URL",
                      help="Redis URL of the Celery broker (queue backend 'celery').")(fn)
    fn = click.option("--workers", type=click.IntRange(min=1), default=None,
                      help="Analysis processes (local) or Celery concurrency [default: 2].")(fn)
    fn = click.option("--analysis-memory-mb", type=click.IntRange(min=0), default=None,
                      help="Address-space cap (RLIMIT_AS) of each analysis process in MiB; "
                           "a file needing more fails with too_large. 0: no cap "
                           "[default: 3072].")(fn)
    return fn


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@_common_options
@click.option("--queue-backend", type=click.Choice(["local", "celery"]), default=None,
              envvar="ANTIFAKE_QUEUE_BACKEND",
              help="local: in-process workers [default]; celery: jobs go to `antifake worker`s.")
@click.option("--auth/--no-auth", "auth", default=None,
              help="Require API keys [default: only when not bound to loopback].")
@click.option("--max-upload-mb", type=float, default=None, help="Largest accepted request body.")
@click.option("--retention-hours", type=float, default=None,
              help="Delete uploads and results after this long [default: 24].")
@click.option("--job-timeout", type=float, default=None, help="Seconds per file [default: 300].")
@click.option("--log-level", default="info", show_default=True)
def serve_command(
    host: str, port: int, data_dir: Path | None, database_url: str | None,
    broker_url: str | None, workers: int | None, analysis_memory_mb: int | None,
    queue_backend: str | None, auth: bool | None,
    max_upload_mb: float | None, retention_hours: float | None, job_timeout: float | None,
    log_level: str,
) -> None:
    """Run the detection service (REST API, web page, job workers)."""
    import uvicorn

    from antifake.service.api import create_app

    if auth is None:
        env_auth = os.environ.get("ANTIFAKE_AUTH_REQUIRED")
        auth = (env_auth.lower() in ("1", "true", "yes", "on")) if env_auth is not None \
            else not _is_loopback(host)
    if not auth and not _is_loopback(host):
        click.echo(f"warning: no API keys required and listening on {host}: anyone who can "
                   "reach this port can use the service", err=True)
    settings = _settings(
        data_dir=data_dir, database_url=database_url, broker_url=broker_url, workers=workers,
        queue_backend=queue_backend, auth_required=auth,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024) if max_upload_mb else None,
        retention_s=retention_hours * 3600 if retention_hours is not None else None,
        job_timeout_s=job_timeout, analysis_memory_mb=analysis_memory_mb,
        allowed_hosts=local_hosts(host) if not auth else None,
    )
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"antifake: data in {settings.data_dir}, queue {settings.queue_backend}, "
               f"API keys {'required' if settings.auth_required else 'not required'}\n"
               f"  web page: http://{shown}:{port}/\n"
               f"  API reference: http://{shown}:{port}/docs", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=10)


@click.command("worker")
@_common_options
@click.option("--loglevel", default="info", show_default=True)
def worker_command(data_dir: Path | None, database_url: str | None, broker_url: str | None,
                   workers: int | None, analysis_memory_mb: int | None, loglevel: str) -> None:
    """Run a Celery worker for a server started with --queue-backend celery.

    It must see the same database and data dir as the server (shared disk or PostgreSQL
    plus a shared volume for uploads).
    """
    settings = _settings(data_dir=data_dir, database_url=database_url, broker_url=broker_url,
                         workers=workers, queue_backend="celery",
                         analysis_memory_mb=analysis_memory_mb)
    # The module-level Celery app of celery_app reads ANTIFAKE_*; child processes too.
    os.environ.update(settings.to_env())
    from antifake.service import celery_app  # builds its app from the env set above

    celery_app.app.worker_main([
        "worker", f"--concurrency={settings.workers}", "--pool=prefork",
        f"--loglevel={loglevel}", "-Q", "antifake", "--without-gossip", "--without-mingle",
    ])


@click.group("keys")
def keys_group() -> None:
    """Manage API keys (stored hashed; the plaintext is shown once)."""


@keys_group.command("create")
@click.argument("name")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="ANTIFAKE_DATA_DIR")
@click.option("--database-url", default=None, envvar="ANTIFAKE_DATABASE_URL")
@click.option("--rate", type=float, default=None, help="Requests per second (token bucket).")
@click.option("--burst", type=int, default=None, help="Bucket size.")
@click.option("--daily-quota", type=int, default=None, help="Files per UTC day.")
def keys_create(name: str, data_dir: Path | None, database_url: str | None,
                rate: float | None, burst: int | None, daily_quota: int | None) -> None:
    """Create a key called NAME and print it (it cannot be shown again)."""
    from antifake.service.auth import create_key
    from antifake.service.store import JobStore

    settings = _settings(data_dir=data_dir, database_url=database_url)
    settings.ensure_dirs()
    store = JobStore(settings.db_url)
    try:
        created = create_key(store, settings, name, rate_limit_per_s=rate,
                             rate_limit_burst=burst, daily_quota=daily_quota)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    finally:
        store.dispose()
    click.echo(created.api_key)
    click.echo(f"key id: {created.key_id}; webhook secret: {created.webhook_secret}", err=True)


@keys_group.command("list")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="ANTIFAKE_DATA_DIR")
@click.option("--database-url", default=None, envvar="ANTIFAKE_DATABASE_URL")
def keys_list(data_dir: Path | None, database_url: str | None) -> None:
    """List keys (ids and names; never the keys themselves)."""
    from antifake.service.store import JobStore

    settings = _settings(data_dir=data_dir, database_url=database_url)
    store = JobStore(settings.db_url)
    try:
        for k in store.list_keys():
            state = "revoked" if k.revoked_at else "active"
            click.echo(f"{k.key_id}  {state:<8} {k.created_at:%Y-%m-%d}  {k.name}")
    finally:
        store.dispose()


@keys_group.command("revoke")
@click.argument("key_id")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="ANTIFAKE_DATA_DIR")
@click.option("--database-url", default=None, envvar="ANTIFAKE_DATABASE_URL")
def keys_revoke(key_id: str, data_dir: Path | None, database_url: str | None) -> None:
    """Revoke KEY_ID (takes effect within 10 s on running servers)."""
    from antifake.service.store import JobStore

    settings = _settings(data_dir=data_dir, database_url=database_url)
    store = JobStore(settings.db_url)
    try:
        if not store.revoke_key(key_id):
            raise click.ClickException(f"no active key {key_id}")
    finally:
        store.dispose()
    click.echo(f"revoked {key_id}")
