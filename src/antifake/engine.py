"""The analysis pipeline: open media -> run detectors -> fuse -> :class:`AnalysisResult`.

Free of web and queue code: the CLI, the API and workers all call :meth:`Engine.analyze`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from antifake import __version__
from antifake.config import AnalysisOptions
from antifake.detectors.base import AnalysisContext, Detector
from antifake.detectors.registry import create_detector, default_detector_names
from antifake.errors import AntifakeError, ErrorCode
from antifake.explain import annotate
from antifake.fusion import EvidenceFusion, Fusion
from antifake.media import open_media
from antifake.media.format_groups import media_format_groups
from antifake.progress import CountingMedia, ProgressCallback, ProgressMeter, expected_frames
from antifake.results import AnalysisResult, DetectorResult

log = logging.getLogger(__name__)

try:
    import resource
except ImportError:  # not on Windows: no address-space cap to report
    resource = None  # type: ignore[assignment]


# Media-level failures: when a detector hits one of these the file itself is bad, so the
# whole file is reported as failed rather than one detector.
_FILE_LEVEL_CODES = {
    ErrorCode.CORRUPT_MEDIA,
    ErrorCode.TOO_LARGE,
    ErrorCode.UNSUPPORTED_MEDIA,
    ErrorCode.EMPTY_FILE,
    ErrorCode.NOT_FOUND,
    ErrorCode.TIMEOUT,
}


# Allocation failures of native libraries that do not raise MemoryError: torch's CPU
# allocator raises RuntimeError, OpenCV cv2.error "Insufficient memory"/"Failed to
# allocate", onnxruntime and other C++ code surface std::bad_alloc as text.
_OOM_MESSAGES = ("can't allocate memory", "bad_alloc", "bad allocation", "out of memory",
                 "insufficient memory", "failed to allocate")


def _is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failed allocation."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 8:
        if isinstance(cur, MemoryError):
            return True
        if not isinstance(cur, AntifakeError) and any(
                m in str(cur).lower() for m in _OOM_MESSAGES):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


def memory_error_dict() -> dict[str, str]:
    """The ``error`` of a file whose analysis ran out of memory: ``too_large``, naming the
    process's address-space cap (``RLIMIT_AS``, set by the service) when there is one.
    Not retried by the service: the same file would fail the same way."""
    soft = resource.getrlimit(resource.RLIMIT_AS)[0] if resource is not None else -1
    if resource is not None and soft != resource.RLIM_INFINITY:
        message = f"analysis exceeded the memory limit ({soft // (1024 * 1024)} MiB)"
    else:
        message = "analysis ran out of memory"
    return {"code": ErrorCode.TOO_LARGE.value, "message": message}


def default_fusion() -> Fusion:
    """The shipped calibrated fusion (see :mod:`antifake.calibration`).

    Falls back to plain log-odds evidence fusion only if the calibration file is missing
    from a broken install, and says so in the log.
    """
    from antifake.calibration import CalibratedFusion

    try:
        return CalibratedFusion.load()
    except FileNotFoundError:
        log.warning("calibration.json missing from the package; using EvidenceFusion")
        return EvidenceFusion()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


MAX_DEFAULT_DETECTOR_THREADS = 4


def default_detector_threads() -> int:
    """Detector threads of an :class:`Engine` made without ``detector_threads``: one per
    usable CPU, at most MAX_DEFAULT_DETECTOR_THREADS (a verdict has about five detectors,
    and two or three of them do the heavy work)."""
    return min(MAX_DEFAULT_DETECTOR_THREADS, usable_cpus())


def _start_threads(n: int) -> ThreadPoolExecutor | None:
    """A pool of ``n`` detector threads, every one started now; None if that fails.

    ThreadPoolExecutor starts threads lazily, on a later ``submit``; a failure there would
    lose track of the submitted work. Each thread here waits at a barrier until all ``n``
    run, which forces all of them to start.
    """
    pool = ThreadPoolExecutor(n, thread_name_prefix="antifake-detector")
    barrier = threading.Barrier(n, timeout=30)
    try:
        started = [pool.submit(barrier.wait) for _ in range(n)]
        wait(started)
        for f in started:
            f.result()
    except (RuntimeError, threading.BrokenBarrierError):  # "can't start new thread"
        barrier.abort()
        pool.shutdown(wait=False, cancel_futures=True)
        return None
    return pool


MAX_HEATMAP_SIDE = 1024


def bound_heatmap(heat: np.ndarray, max_side: int = MAX_HEATMAP_SIDE) -> np.ndarray:
    """``heat`` as float32 with its long side <= ``max_side`` (block means, so a region's
    average survives). A 631-byte JPEG declaring 8944x8944 px made a 320 MB float32
    splicing map that was copied to the API process and kept 24 h (issue 11 item 3);
    renderers resize heatmaps anyway, so nothing visible is lost."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2 or max(heat.shape) <= max_side:
        return heat
    f = -(-max(heat.shape) // max_side)  # ceil: smallest integer factor that fits
    h, w = heat.shape
    ph, pw = -h % f, -w % f
    if ph or pw:  # pad with edge values so the last block is a mean of real cells
        heat = np.pad(heat, ((0, ph), (0, pw)), mode="edge")
    return np.asarray(heat.reshape(heat.shape[0] // f, f, heat.shape[1] // f, f)
                      .mean(axis=(1, 3)), dtype=np.float32)


def _scrub_paths(result: AnalysisResult, path: Path, name: str) -> None:
    """Replace the file's server-side path in error texts by the client's name.

    The service stores uploads under its data dir and passes the client's file name as
    ``display_name``; messages from the media layer (or Pillow/PyAV) name the stored path,
    which must not reach the client (issue 11 item 11).
    """
    forms = sorted({str(path), str(path.resolve()), os.fspath(path.absolute())},
                   key=len, reverse=True)
    folders = sorted({str(path.parent.resolve()), str(path.parent)} - {"", "."},
                     key=len, reverse=True)

    def clean(text: str) -> str:
        for f in forms:
            text = text.replace(f, name)
        for d in folders:  # e.g. a temporary sibling file named in a decoder message
            text = text.replace(d + os.sep, "")
        return text

    errors = [result.error] + [d.error for d in result.detectors]
    for err in errors:
        if err and "message" in err:
            err["message"] = clean(str(err["message"]))
    for d in result.detectors:
        d.summary = clean(d.summary)


class Engine:
    """Runs a fixed set of detectors; create once and reuse (models load once)."""

    def __init__(
        self,
        detectors: Sequence[str] | None = None,
        fusion: Fusion | None = None,
        options: AnalysisOptions | None = None,
        detector_config: Mapping[str, Mapping[str, Any]] | None = None,
        detector_threads: int | None = None,
    ) -> None:
        """``detector_config`` maps a detector name to keyword arguments for its factory,
        e.g. ``{"c2pa": {"trust_anchors": "anchors.pem"}}``.

        ``detector_threads``: the detectors of one file run concurrently on up to this many
        threads; 1 runs them one after another in the calling thread. Default (None):
        :func:`default_detector_threads` (2 on a 2-core machine). Their heavy work (numpy,
        OpenCV, onnxruntime, FFmpeg) releases the GIL, so this shortens one verdict;
        results keep the detectors' order and do not depend on the thread count, and each
        detector's ``elapsed_ms`` is its own wall time, which then overlaps the others'.
        The cores are shared out: each detector is told (``AnalysisContext.cpu_threads``)
        how many it may use for its own parallel work, so onnxruntime's pool does not
        compete with the other detectors (docs/benchmarks.md, "Whole-engine latency").
        """
        self.options = options or AnalysisOptions()
        names = list(detectors or self.options.detectors or default_detector_names())
        config = detector_config or {}
        self.detectors: list[Detector] = [create_detector(n, **config.get(n, {})) for n in names]
        self.fusion: Fusion = fusion or default_fusion()
        self.detector_threads = (default_detector_threads() if detector_threads is None
                                 else max(1, int(detector_threads)))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        if self.detector_threads > 1:
            self._executor()  # start the threads now, while the process has room for them

    @property
    def detector_versions(self) -> dict[str, str]:
        return {d.name: d.version for d in self.detectors}

    def analyze(
        self,
        path: str | Path,
        progress: ProgressCallback | None = None,
        display_name: str | None = None,
    ) -> AnalysisResult:
        """Analyse one file. Never raises for bad media: the error goes into the result."""
        name = display_name or str(path)
        started = time.perf_counter()
        result = AnalysisResult(
            file=name,
            media_type=None,
            verdict=None,
            ai_probability=None,
            engine_version=__version__,
            analyzed_at=_now_iso(),
        )
        try:
            self._analyze_into(result, Path(path), progress)
        except AntifakeError as exc:
            result.error = memory_error_dict() if _is_out_of_memory(exc) else exc.to_dict()
        except Exception as exc:  # a bug, but one file must not take down a batch/server
            if _is_out_of_memory(exc):  # the file needs more memory than this process has
                log.warning("out of memory analysing %s: %r", name, exc)
                result.error = memory_error_dict()
            else:
                log.exception("internal error analysing %s", name)
                result.error = {"code": ErrorCode.INTERNAL_ERROR.value, "message": repr(exc)}
        if result.error is not None:
            result.verdict = None
            result.ai_probability = None
            result.generator = None
        if display_name is not None:
            _scrub_paths(result, Path(path), display_name)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def _analyze_into(
        self, result: AnalysisResult, path: Path, progress: ProgressCallback | None
    ) -> None:
        opts = self.options
        deadline = time.monotonic() + opts.limits.timeout_s
        media = open_media(path, opts.limits)
        result.media_type = media.info.media_type
        result.media = media.info.to_dict()
        applicable = [d for d in self.detectors if media.info.media_type in d.media_types]
        pool = (self._executor() if self.detector_threads > 1 and len(applicable) > 1
                else None)
        sampling = opts.sampling
        cap = opts.limits.max_frames_analysed
        if cap is not None and (sampling.max_frames is None or sampling.max_frames > cap):
            sampling = replace(sampling, max_frames=cap)
        ctx = AnalysisContext(
            sampling=sampling, limits=opts.limits, want_heatmaps=opts.want_heatmaps,
            cpu_threads=(max(1, usable_cpus() // min(self.detector_threads, len(applicable)))
                         if pool is not None else None),
        )

        meter = (ProgressMeter(result.file, progress,
                               expected_frames(media.info, sampling), len(applicable))
                 if progress else None)
        seen_by_detectors: Any = CountingMedia(media, meter) if meter else media

        def run(detector: Detector) -> DetectorResult:
            if time.monotonic() > deadline:
                raise AntifakeError(
                    ErrorCode.TIMEOUT,
                    f"analysis exceeded {opts.limits.timeout_s:.0f} s before {detector.name}",
                )
            return self._run_detector(detector, seen_by_detectors, ctx)

        if pool is not None:
            result.detectors.extend(
                self._run_concurrently(pool, applicable, run, result.file, meter))
        else:
            result.detectors.extend(self._run_in_order(applicable, run, result.file, meter))
        if meter:
            meter.finish("fusion")
        info = media.info
        fused = self.fusion.fuse(
            result.detectors, media_type=info.media_type,
            formats=media_format_groups(info.format, info.media_type, info.width, info.height))
        result.verdict = fused.verdict
        result.ai_probability = fused.ai_probability
        result.generator = fused.generator
        result.fusion = fused.details
        annotate(result)

    def _executor(self) -> ThreadPoolExecutor | None:
        """The engine's detector threads, all started by the first call (the constructor's;
        again after a fork: a forked child, e.g. a prefork worker, inherits the pool but not
        its threads).

        None when they cannot all be started - e.g. a process under an address-space cap
        (``RLIMIT_AS``) that a large file has fragmented has no room for a thread stack;
        the engine then runs detectors one after another in this process from then on
        (logged once), instead of failing files.
        """
        with self._pool_lock:
            if self._pool_pid != os.getpid():
                self._pool, self._pool_pid = _start_threads(self.detector_threads), os.getpid()
                if self._pool is None:
                    log.warning("could not start %d detector threads; running detectors "
                                "one after another in this process", self.detector_threads)
            return self._pool

    @staticmethod
    def _run_in_order(
        detectors: list[Detector],
        run: Callable[[Detector], DetectorResult],
        file: str,
        meter: ProgressMeter | None,
    ) -> list[DetectorResult]:
        """Run ``detectors`` one after another in this thread."""
        out = []
        for step, detector in enumerate(detectors):
            if meter:
                meter.detector_started(step, detector.name)
            out.append(run(detector))
        return out

    @staticmethod
    def _run_concurrently(
        pool: ThreadPoolExecutor,
        detectors: list[Detector],
        run: Callable[[Detector], DetectorResult],
        file: str,
        meter: ProgressMeter | None,
    ) -> list[DetectorResult]:
        """Run ``detectors`` on the engine's threads; results and progress in their order.

        Progress is reported as in a sequential run (step ``i`` names detector ``i``, sent
        once every detector before it has finished), from the calling thread. When one
        fails at file level (corrupt media, timeout, out of memory) the first such failure
        in detector order is raised, after the detectors still running have finished and
        those not started are cancelled, so no work outlives the call.
        """
        futures: list[Future[DetectorResult]] = [pool.submit(run, d) for d in detectors]
        try:
            for step, (detector, future) in enumerate(zip(detectors, futures, strict=True)):
                if meter:
                    meter.detector_started(step, detector.name)
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            wait(futures)
            raise
        return [f.result() for f in futures]

    @staticmethod
    def _run_detector(detector: Detector, media: object, ctx: AnalysisContext) -> DetectorResult:
        t0 = time.perf_counter()
        try:
            out = detector.analyze(media, ctx)  # type: ignore[arg-type]
        except AntifakeError as exc:
            if exc.code in _FILE_LEVEL_CODES or _is_out_of_memory(exc):
                raise
            out = DetectorResult(
                detector=detector.name, score=None, kind=detector.kind,
                summary=f"detector failed: {exc.message}", error=exc.to_dict(),
            )
        except Exception as exc:
            if _is_out_of_memory(exc):  # the file is too big for this process, not a bug
                raise
            log.exception("detector %s failed", detector.name)
            out = DetectorResult(
                detector=detector.name, score=None, kind=detector.kind,
                summary=f"detector failed: {exc!r}",
                error={"code": ErrorCode.INTERNAL_ERROR.value, "message": repr(exc)},
            )
        if out.heatmap is not None:
            out.heatmap = bound_heatmap(out.heatmap)
        out.elapsed_ms = (time.perf_counter() - t0) * 1000
        out.details.setdefault("version", detector.version)
        return out
