"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temp dir.

``pg_cluster`` (module scope) starts one cluster on a free loopback port and stops it at
the end; ``pg_url`` (function scope) creates a fresh database in it per test and yields a
``postgresql+psycopg://`` URL. Without the PostgreSQL binaries or the psycopg driver the
tests are skipped with the reason, except when ``CI`` is set: CI installs the apt packages
(scripts/apt-packages.txt) and the ``postgres`` extra, so there a missing piece is a failure.

initdb refuses to run as root, so as root the server runs as the ``postgres`` system user
(created by the Debian package) in a temp dir chowned to it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_USER = "postgres"  # the superuser role initdb creates (-U)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests must run in CI: {reason}")
    pytest.skip(reason)


def _pg_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin with initdb, else initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PgCluster:
    """A running cluster: its port and how to run its binaries as the right user."""

    port: int
    data_dir: Path
    run_as: tuple[str, ...]  # command prefix: () or ("runuser", "-u", "postgres", "--")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


def _run(cmd: list[str], timeout: float = 60) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    """Start a PostgreSQL cluster on a free 127.0.0.1 port; stop and delete it afterwards."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install -e '.[postgres]')")
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; "
                     "apt-get install postgresql")
        raise AssertionError("unreachable")
    run_as: tuple[str, ...] = ()
    root = tempfile.mkdtemp(prefix="antifake-pg-")
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            _unavailable("running as root and there is no 'postgres' system user for initdb")
            raise AssertionError("unreachable") from None
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o700)
        runuser = shutil.which("runuser")
        run_as = (runuser, "-u", "postgres", "--") if runuser else ("su", "postgres", "-c")
    data_dir = Path(root) / "data"

    def as_pg(cmd: list[str]) -> list[str]:
        if run_as[:1] == ("su",):
            import shlex

            return [*run_as, shlex.join(cmd)]
        return [*run_as, *cmd]

    started = False
    try:
        _run(as_pg([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", PG_USER,
                    "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C"]))
        # A free port can be taken between probing and binding: retry a few times.
        for attempt in range(3):
            port = _free_port()
            # Only TCP on loopback (no Unix socket in /var/run), no fsync: a throwaway.
            opts = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                    f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            try:
                _run(as_pg([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", opts,
                            "-l", str(Path(root) / "server.log"), "-w", "-t", "30", "start"]))
                started = True
                break
            except RuntimeError:
                if attempt == 2:
                    log = Path(root) / "server.log"
                    raise RuntimeError("PostgreSQL did not start:\n"
                                       + (log.read_text() if log.exists() else "")) from None
        yield PgCluster(port=port, data_dir=data_dir, run_as=run_as)
    finally:
        if started:
            subprocess.run(as_pg([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m",
                                  "immediate", "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A ``postgresql+psycopg://`` URL to a fresh, empty database (one per test)."""
    return pg_cluster.url(pg_cluster.create_database())
