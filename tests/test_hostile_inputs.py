"""The hostile-input matrix (tests/hostile.py) through ``Engine().analyze``, sandboxed.

Each case runs in a worker subprocess capped by ``RLIMIT_AS`` (DEFAULT_MEM_MIB) with a
wall-clock budget (DEFAULT_TIMEOUT_S, retried once in a fresh worker because the CPUs are
shared): a hang or a blow-up fails that case, not the suite. Cost-amplification cases
(tens of seconds each) run only with ``ANTIFAKE_SLOW_TESTS=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import hostile

ALL_CASES = hostile.cases()
RUN_SLOW = os.environ.get("ANTIFAKE_SLOW_TESTS") == "1"


@pytest.fixture(scope="module")
def worker() -> Iterator[hostile.SandboxedWorker]:
    w = hostile.SandboxedWorker(
        timeout_s=float(os.environ.get("ANTIFAKE_HOSTILE_TIMEOUT_S", hostile.DEFAULT_TIMEOUT_S)),
        mem_mib=int(os.environ.get("ANTIFAKE_HOSTILE_MEM_MIB", hostile.DEFAULT_MEM_MIB)),
    )
    w.start()
    yield w
    w.stop()


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_hostile_case(case: hostile.Case, worker: hostile.SandboxedWorker,
                      tmp_path: Path) -> None:
    if case.slow_timeout_s is not None and not RUN_SLOW:
        pytest.skip("cost-amplification case: set ANTIFAKE_SLOW_TESTS=1")
    res = worker.run(case, tmp_path)
    assert res.passed, (
        f"{case.name}: got {res.outcome!r} ({res.message}) after {res.elapsed_s:.2f} s, "
        f"expected one of {sorted(case.expect)}"
        + (f" with format {case.media_format!r}, got {res.format!r}" if case.media_format else "")
    )


def test_matrix_covers_every_format() -> None:
    names = {c.name for c in ALL_CASES}
    for kind in hostile.STILL_KINDS + hostile.ANIM_KINDS + hostile.VIDEO_KINDS:
        for prefix in ("valid", "truncated", "bitflip", "wrong_ext"):
            assert any(n.startswith(f"{prefix}/{kind}") for n in names), (prefix, kind)
    assert len(ALL_CASES) >= 250


def test_sandbox_turns_hang_abort_and_blowup_into_results(tmp_path: Path) -> None:
    """The sandbox itself: a hang times out, an abort is a crash, an allocation over the
    RLIMIT_AS cap fails inside the worker; each time the next case still runs."""
    w = hostile.SandboxedWorker(timeout_s=1.0, mem_mib=hostile.DEFAULT_MEM_MIB)
    try:
        assert w.run_path("!sleep")[0] == "timeout"
        assert w.run_path("!abort")[0] == "crash"
        assert w.run_path("!alloc")[0] == "memory_error"
        assert w.run_path(tmp_path / "missing.png")[0] == "not_found"
    finally:
        w.stop()


def test_animated_webp_is_analysed_not_failed(tmp_path: Path) -> None:
    """Regression: the temporal detector decoded animated WebP with FFmpeg, which cannot,
    and its corrupt_media error failed the whole valid file."""
    from antifake.engine import Engine

    path = tmp_path / "anim.webp"
    path.write_bytes(hostile.base_bytes("anim_webp"))
    result = Engine().analyze(path)
    assert result.error is None, result.error
    assert result.media_type == "video"
    by_name = {d.detector: d for d in result.detectors}
    if "temporal" in by_name:
        assert by_name["temporal"].error is None
        assert by_name["temporal"].score is None
