"""Start/stop `antifake serve` as a separate process for the service benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"),
                                       e.get("PYTHONPATH", "")])
    return e


def antifake(*args: str) -> list[str]:
    return [sys.executable, "-c", "from antifake.cli import main; main()", *args]


def create_key(data_dir: Path, rate: float) -> str:
    out = subprocess.run(antifake("keys", "create", "bench", "--data-dir", str(data_dir),
                                  "--rate", str(rate), "--burst", str(int(rate * 2))),
                         env=env(), check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def start(data_dir: Path, port: int, workers: int, extra: list[str] | None = None,
          log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        antifake("serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                 str(data_dir), "--workers", str(workers), "--log-level", "warning",
                 *(extra or [])),
        env=env(), stdout=out, stderr=out, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Kill the server and its analysis processes (its whole process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(30)
