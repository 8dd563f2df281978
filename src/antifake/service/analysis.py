"""What an analysis process runs, and how its output is stored and read back.

This module is imported inside the analysis processes (local pool) and Celery workers: it
must stay free of web code. Engines are cached per process and per option set, so detector
models load once per process.
"""

from __future__ import annotations

import importlib
import logging
import os
import resource
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from antifake import __version__
from antifake.config import AnalysisOptions, FrameSampling, Limits
from antifake.errors import AntifakeError, ErrorCode
from antifake.results import AnalysisResult, DetectorResult, GeneratorGuess

log = logging.getLogger(__name__)

# progress(fraction in [0, 1], stage label)
ProgressFn = Callable[[float, str], None]

_MIB = 1024 * 1024


def vm_size_mib() -> int | None:
    """This process's virtual size (``VmSize``, what ``RLIMIT_AS`` counts) in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def apply_memory_limit(limit_mb: int) -> None:
    """Cap this process's address space at ``limit_mb`` MiB (``RLIMIT_AS``; 0 = no cap).

    Called once in every process that runs the engine (local analysis processes, Celery
    pool children), never in the API server. Past the cap an allocation fails: numpy,
    Pillow and OpenCV raise ``MemoryError``, which the engine reports as ``too_large``
    ("analysis exceeded the memory limit (N MiB)") instead of the host's OOM killer
    picking a victim. Only lowers the limit: a stricter cap set from outside is kept.
    """
    if limit_mb <= 0:
        return
    wanted = limit_mb * _MIB
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY and soft <= wanted:
        return
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    idle = vm_size_mib()
    if idle is not None and idle > limit_mb * 0.8:
        log.warning("analysis memory cap of %d MiB leaves little room: this process already "
                    "maps %d MiB; most analyses will fail with too_large", limit_mb, idle)


def memory_exceeded_result(file_name: str) -> dict[str, Any]:
    """The result of a file whose analysis ran out of memory outside the engine."""
    from antifake.engine import memory_error_dict

    return error_result(file_name, memory_error_dict())


@dataclass(frozen=True)
class AnalysisTask:
    """Everything an analysis process needs (picklable; no database handles)."""

    path: str
    display_name: str
    detectors: tuple[str, ...] | None = None
    sampling: str = "fps=2,max=64"
    want_heatmaps: bool = True
    limits: Limits = field(default_factory=Limits)
    plugin_modules: tuple[str, ...] = ()


@dataclass
class AnalysisOutcome:
    result: dict[str, Any]  # AnalysisResult.to_dict()
    heatmaps: dict[str, np.ndarray]  # detector -> HxW float array


_ENGINES: dict[tuple[Any, ...], Any] = {}
_IMPORTED_PLUGINS: set[str] = set()


def _engine_for(task: AnalysisTask) -> Any:
    from antifake.engine import Engine

    for module in task.plugin_modules:
        if module not in _IMPORTED_PLUGINS:
            importlib.import_module(module)
            _IMPORTED_PLUGINS.add(module)
    key = (task.detectors, task.sampling, task.want_heatmaps, task.limits)
    engine = _ENGINES.get(key)
    if engine is None:
        options = AnalysisOptions(
            detectors=task.detectors, sampling=FrameSampling.parse(task.sampling),
            limits=task.limits, want_heatmaps=task.want_heatmaps,
        )
        engine = _ENGINES[key] = Engine(options=options,
                                        detector_threads=1 if address_space_capped() else None)
    return engine


def address_space_capped() -> bool:
    """Whether this process runs under an address-space cap (``RLIMIT_AS``).

    Such a process runs its detectors one after another: concurrent detectors need more
    address space at once (thread stacks, per-thread malloc arenas, two working sets), and
    under a tight cap a process that had just failed a too-large file could then not
    analyse a small one (tests/test_service_memory_cap.py).
    """
    return resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY


def run_analysis(task: AnalysisTask, progress: ProgressFn | None = None) -> AnalysisOutcome:
    """Analyse one file in this process. Bad media and bad options end up in the result."""

    def on_step(_file: str, step: int, total: int, label: str) -> None:
        if progress is not None:
            progress(step / total if total else 0.0, label)

    try:
        engine = _engine_for(task)
    except AntifakeError as exc:
        return AnalysisOutcome(result=error_result(task.display_name, exc.to_dict()), heatmaps={})
    try:
        result = engine.analyze(task.path, progress=on_step, display_name=task.display_name)
        return AnalysisOutcome(result=result.to_dict(), heatmaps=result.heatmaps())
    except MemoryError:  # the engine reports its own; this is the result's conversion
        return AnalysisOutcome(result=memory_exceeded_result(task.display_name), heatmaps={})


def error_result(file_name: str, error: dict[str, Any]) -> dict[str, Any]:
    """The JSON of a file that could not be analysed at all (same shape as the CLI's)."""
    from datetime import UTC, datetime

    r = AnalysisResult(
        file=file_name, media_type=None, verdict=None, ai_probability=None,
        engine_version=__version__,
        analyzed_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    r.error = {"code": str(error.get("code", ErrorCode.INTERNAL_ERROR.value)),
               "message": str(error.get("message", ""))}
    return r.to_dict()


def save_heatmaps(results_dir: Path, job_id: str, heatmaps: dict[str, np.ndarray]) -> str | None:
    """Write heatmaps atomically as ``<job_id>.npz`` (same content when re-run: idempotent)."""
    if not heatmaps:
        return None
    results_dir.mkdir(parents=True, exist_ok=True)
    final = results_dir / f"{job_id}.npz"
    fd, tmp = tempfile.mkstemp(dir=results_dir, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            arrays: dict[str, Any] = {k: np.asarray(v, dtype=np.float32)
                                      for k, v in heatmaps.items()}
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(final)


def load_heatmaps(path: str | None) -> dict[str, np.ndarray]:
    if not path or not Path(path).exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def result_from_dict(
    d: dict[str, Any], heatmaps: dict[str, np.ndarray] | None = None
) -> AnalysisResult:
    """Rebuild an :class:`AnalysisResult` from its JSON (plus stored heatmaps) for renderers."""
    heatmaps = heatmaps or {}

    def guess(g: dict[str, Any] | None) -> GeneratorGuess | None:
        if not g:
            return None
        return GeneratorGuess(family=g["family"], probability=float(g["probability"]),
                              name=g.get("name"))

    detectors = [
        DetectorResult(
            detector=x["detector"], score=x.get("score"), summary=x.get("summary", ""),
            kind=x.get("kind", "provenance"), evidence=list(x.get("evidence") or []),
            details=dict(x.get("details") or {}), generator=guess(x.get("generator")),
            decisive=bool(x.get("decisive", False)), heatmap=heatmaps.get(x["detector"]),
            timeline=x.get("timeline"), timeline_times_s=x.get("timeline_times_s"),
            elapsed_ms=float(x.get("elapsed_ms") or 0.0), error=x.get("error"),
            stance=str(x.get("stance") or "neutral"),
        )
        for x in d.get("detectors") or []
    ]
    return AnalysisResult(
        file=d.get("file", ""), media_type=d.get("media_type"), verdict=d.get("verdict"),
        ai_probability=d.get("ai_probability"), generator=guess(d.get("generator")),
        detectors=detectors, media=d.get("media"), error=d.get("error"),
        elapsed_ms=float(d.get("elapsed_ms") or 0.0), engine_version=d.get("engine_version", ""),
        analyzed_at=d.get("analyzed_at", ""), fusion=dict(d.get("fusion") or {}),
        reasons=[str(r) for r in d.get("reasons") or []],
        audio=d.get("audio"),
    )
