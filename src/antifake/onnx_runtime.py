"""onnxruntime sessions as every model here uses them: CPU only, a given number of intra-op
threads, one inter-op thread, no spinning (an idle pool gives its core back to the other
detectors running beside it)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ModelSource = bytes | str | Path


def cpu_session(model: bytes | str | Path, threads: int, spin: bool = False) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``model`` (bytes or a file path)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


class SessionCache:
    """One shared session per intra-op thread count, made on first use from ``model()``
    (bytes or a path; read only then). onnxruntime sessions are thread-safe, so the
    detectors running side by side share them."""

    def __init__(self, model: Callable[[], ModelSource], spin: bool = False) -> None:
        self._model = model
        self._spin = spin
        self._lock = threading.Lock()
        self._sessions: dict[int, Any] = {}

    def get(self, threads: int) -> Any:
        with self._lock:
            session = self._sessions.get(threads)
            if session is None:
                session = cpu_session(self._model(), threads, spin=self._spin)
                self._sessions[threads] = session
            return session
