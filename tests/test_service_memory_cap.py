"""The per-analysis-process memory cap (``ServiceSettings.analysis_memory_mb``).

A ~35 KiB PNG of 36 Mpx zeros needs ~2.2 GiB of address space through the default
engine (scripts/measure_analysis_memory.py). Under a cap of the idle analysis process +
~450 MiB it must fail cleanly with ``too_large`` on its first attempt (no retry: the same
file would fail the same way), through ``POST /v1/jobs`` and ``POST /v1/detect``, and the
same analysis process must go on serving normal files.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from antifake.detectors.base import AnalysisContext
from antifake.engine import Engine
from antifake.media.types import Media, MediaType
from antifake.results import DetectorKind, DetectorResult
from antifake.service.api import create_app
from antifake.service.settings import ServiceSettings
from hostile import png_zlib_bomb
from service_support import make_settings, redis_and_celery_worker, wait_job
from synth import write_image

SIDE = 6000  # 36 Mpx: decodes to 36 MB grey, 108 MB RGB, then float copies per detector

_IDLE_PROBE = """
import json
import os
import shutil
import socket
import antifake.engine
from antifake.detectors.registry import ensure_builtin_detectors
ensure_builtin_detectors()
vm = [l for l in open('/proc/self/status') if l.startswith('VmSize:')][0]
print(json.dumps(int(vm.split()[1]) // 1024))
"""


@pytest.fixture(scope="module")
def cap_mb() -> int:
    """The idle analysis process's address space + 450 MiB (measured, not guessed: the
    mapped libraries differ between installs)."""
    out = subprocess.run([sys.executable, "-c", _IDLE_PROBE], capture_output=True, text=True,
                         timeout=60, check=True)
    idle = int(json.loads(out.stdout.strip().splitlines()[-1]))
    assert 100 < idle < 4000, idle
    return idle + 450


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = png_zlib_bomb(SIDE, SIDE)
    assert len(data) < 64 * 1024
    return data


@pytest.fixture(scope="module")
def small_png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_image(tmp_path_factory.mktemp("m") / "a.png").read_bytes()


def test_over_the_cap_fails_too_large_once_and_the_process_keeps_serving(
        tmp_path: Path, cap_mb: int, bomb: bytes, small_png: bytes) -> None:
    settings = make_settings(tmp_path, auth_required=False, detectors=None,
                             analysis_memory_mb=cap_mb, max_attempts=3)
    expected = {"code": "too_large",
                "message": f"analysis exceeded the memory limit ({cap_mb} MiB)"}
    app = create_app(settings)
    with TestClient(app) as client:
        slot = app.state.service.pool._slots[0]
        pid = slot.proc.pid

        job = client.post("/v1/jobs", files={"file": ("bomb.png", bomb)}).json()
        done = wait_job(client, job["id"], timeout_s=60)
        assert done["status"] == "failed", done
        assert done["error"] == expected, done
        assert done["attempts"] == 1, done  # not retried
        assert done["result"]["error"] == expected
        assert done["result"]["verdict"] is None

        r = client.post("/v1/detect", files={"file": ("bomb.png", bomb)})
        assert r.status_code == 200, r.text
        assert r.json()["error"] == expected

        # The same process (no restart) analyses a normal file afterwards, with every
        # default detector.
        r = client.post("/v1/detect", files={"file": ("a.png", small_png)})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["error"] is None, body
        assert body["verdict"] is not None
        assert all(d.get("error") is None for d in body["detectors"]), body["detectors"]
        ok = wait_job(client, client.post(
            "/v1/jobs", files={"file": ("a.png", small_png)}).json()["id"], timeout_s=30)
        assert ok["status"] == "succeeded" and ok["attempts"] == 1, ok

        assert slot.proc.pid == pid and slot.alive()
        assert "worker_restarts_total{" not in client.get("/metrics").text
        assert client.get("/readyz").status_code == 200


def _address_space_limit(pid: int) -> str:
    limits = Path(f"/proc/{pid}/limits").read_text()
    return next(x for x in limits.splitlines() if x.startswith("Max address space")).split()[3]


def test_the_cap_is_only_in_the_analysis_processes(tmp_path: Path, cap_mb: int) -> None:
    before = resource.getrlimit(resource.RLIMIT_AS)
    app = create_app(make_settings(tmp_path, auth_required=False, analysis_memory_mb=cap_mb))
    with TestClient(app):
        pid = app.state.service.pool._slots[0].proc.pid
        deadline = time.monotonic() + 30  # set once the process has done its imports
        while _address_space_limit(pid) == "unlimited" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _address_space_limit(pid) == str(cap_mb * 1024 * 1024)
    assert resource.getrlimit(resource.RLIMIT_AS) == before  # the server is not capped


def test_zero_means_no_cap(tmp_path: Path, small_png: bytes) -> None:
    app = create_app(make_settings(tmp_path, auth_required=False, analysis_memory_mb=0))
    with TestClient(app) as client:
        # After a finished analysis the process is past the point where it sets a cap.
        assert client.post("/v1/detect", files={"file": ("a.png", small_png)}).status_code == 200
        assert _address_space_limit(app.state.service.pool._slots[0].proc.pid) == "unlimited"


def test_setting_from_env_and_cli() -> None:
    assert ServiceSettings().analysis_memory_mb == 3072
    s = ServiceSettings.from_env({"ANTIFAKE_ANALYSIS_MEMORY_MB": "1500"})
    assert s.analysis_memory_mb == 1500
    assert ServiceSettings.from_env(environ=s.to_env()).analysis_memory_mb == 1500
    with pytest.raises(ValueError):
        ServiceSettings(analysis_memory_mb=-1)
    from antifake.service.cli import serve_command, worker_command

    for cmd in (serve_command, worker_command):
        help_text = CliRunner().invoke(cmd, ["--help"]).output
        assert "--analysis-memory-mb" in help_text


class _OOMDetector:
    name: ClassVar[str] = "oom"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image"})
    version: ClassVar[str] = "1"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        raise self.exc


class _BoomDetector(_OOMDetector):
    name: ClassVar[str] = "boom"


@pytest.mark.parametrize("exc", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate "
                 "memory: you tried to allocate 123 bytes"),
    ValueError("wrapped").with_traceback(None),
])
def test_engine_turns_a_failed_allocation_in_a_detector_into_too_large(
        tmp_path: Path, exc: BaseException) -> None:
    if isinstance(exc, ValueError):  # an allocation failure wrapped by a detector
        exc.__cause__ = MemoryError()
    engine = Engine(detectors=["c2pa"])
    engine.detectors = [_OOMDetector(exc), *engine.detectors]
    result = engine.analyze(write_image(tmp_path / "a.png"))
    assert result.error is not None and result.error["code"] == "too_large", result.error
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft == resource.RLIM_INFINITY:
        assert result.error["message"] == "analysis ran out of memory"
    assert result.verdict is None


def test_engine_keeps_other_detector_bugs_per_detector(tmp_path: Path) -> None:
    engine = Engine(detectors=["c2pa"])
    engine.detectors = [_BoomDetector(ValueError("a bug")), *engine.detectors]
    result: Any = engine.analyze(write_image(tmp_path / "a.png"))
    assert result.error is None
    boom = next(d for d in result.detectors if d.detector == "boom")
    assert boom.error["code"] == "internal_error"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_celery_pool_children_are_capped(tmp_path: Path, cap_mb: int, bomb: bytes,
                                         small_png: bytes) -> None:
    """Celery backend: the prefork child (worker_process_init) runs under the cap, the
    too_large job is not retried, and the same worker then analyses a normal file."""
    # A pool child also maps Celery and kombu: give it 150 MiB more than an analysis process.
    cap = cap_mb + 150
    with (redis_and_celery_worker(tmp_path, auth_required=False, detectors=None,
                                  analysis_memory_mb=cap, max_attempts=3) as settings,
          TestClient(create_app(settings)) as client):
        job = client.post("/v1/jobs", files={"file": ("bomb.png", bomb)}).json()
        done = wait_job(client, job["id"], timeout_s=60)
        assert done["status"] == "failed" and done["attempts"] == 1, done
        assert done["error"] == {
            "code": "too_large", "message": f"analysis exceeded the memory limit ({cap} MiB)"}
        ok = wait_job(client, client.post(
            "/v1/jobs", files={"file": ("a.png", small_png)}).json()["id"], timeout_s=60)
        assert ok["status"] == "succeeded" and ok["attempts"] == 1, ok


def test_an_80_mpx_image_is_refused_from_its_header_every_time(tmp_path: Path) -> None:
    """Issue 11 item 12: whether the 80 Mpx file failed depended on the analysis process's
    history (a long-running one analysed it, child peak 2.86 GB); a pixel cap checked
    before decoding makes the outcome the same every time."""
    from antifake.config import AnalysisOptions
    from antifake.engine import Engine
    from synth import write_png_declaring

    settings = ServiceSettings(data_dir=tmp_path)
    assert settings.limits().max_image_pixels == 50_000_000
    bomb = write_png_declaring(tmp_path / "big.png", 8944, 8944)  # 80 Mpx, ~100 bytes
    engine = Engine(options=AnalysisOptions(limits=settings.limits()))
    for _ in range(3):
        r = engine.analyze(bomb)
        assert r.error is not None and r.error["code"] == "too_large"
        assert "max_image_pixels" in r.error["message"]
    ok = write_png_declaring(tmp_path / "ok.png", 7000, 7000)  # 49 Mpx: passes the header cap
    r = engine.analyze(ok)
    assert r.error is None or "max_image_pixels" not in r.error["message"]
