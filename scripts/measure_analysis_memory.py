"""Memory of a service analysis process: idle size, and peak for zero-filled PNGs.

Each measurement runs in a fresh interpreter that does what an analysis process of
``antifake serve`` does (import the engine, register the built-in detectors), then reports
``VmSize`` / ``VmRSS`` from ``/proc/self/status``; with ``--side`` it also analyses a
greyscale zero PNG of ``side`` x ``side`` through the default engine under an optional
``RLIMIT_AS`` cap (``--cap-mb``) and reports ``VmPeak`` (virtual, what ``RLIMIT_AS``
counts), ``VmHWM`` (peak RSS), the time and the result's error code.

    PYTHONPATH=src python scripts/measure_analysis_memory.py                # idle only
    PYTHONPATH=src python scripts/measure_analysis_memory.py --side 4096 --side 6000
    PYTHONPATH=src python scripts/measure_analysis_memory.py --side 8944 --cap-mb 3072
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any


def _status() -> dict[str, int]:
    """The ``Vm*`` lines of ``/proc/self/status`` in MiB."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Vm") and value.strip().endswith("kB"):
            out[key] = int(value.split()[0]) // 1024
    return out


def zero_png(side: int) -> bytes:
    """A valid 8-bit greyscale PNG of ``side`` x ``side`` zeros (a few hundred KiB at most)."""
    import struct

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    comp = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


def _child(side: int | None, cap_mb: int) -> dict[str, Any]:
    import antifake.engine
    from antifake.detectors.registry import ensure_builtin_detectors
    from antifake.service.analysis import apply_memory_limit

    ensure_builtin_detectors()
    report: dict[str, Any] = {"idle": _status()}
    if side is None:
        return report
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "zero.png"
        path.write_bytes(zero_png(side))
        report["file_kib"] = path.stat().st_size // 1024
        engine = antifake.engine.Engine()
        report["after_engine"] = _status()
        apply_memory_limit(cap_mb)
        t0 = time.perf_counter()
        result = engine.analyze(path)
        report["elapsed_s"] = round(time.perf_counter() - t0, 2)
    report["peak"] = _status()
    report["error"] = result.error
    report["verdict"] = result.verdict
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=int, action="append", default=[],
                    help="analyse a side x side zero PNG (repeatable; one process each)")
    ap.add_argument("--cap-mb", type=int, default=0, help="RLIMIT_AS in MiB (0: none)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.side[0] if args.side else None, args.cap_mb)))
        return
    for side in args.side or [None]:
        cmd = [sys.executable, __file__, "--child", "--cap-mb", str(args.cap_mb)]
        if side is not None:
            cmd += ["--side", str(side)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"side={side}: exit {out.returncode}\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        idle = r["idle"]
        line = f"idle VmSize {idle['VmSize']} MiB, VmRSS {idle['VmRSS']} MiB"
        if side is not None:
            peak = r["peak"]
            mpx = side * side / 1e6
            cap = args.cap_mb or "none"
            line = (f"{side}x{side} ({mpx:.1f} Mpx, {r['file_kib']} KiB) cap={cap}: {line}"
                    f"; VmPeak {peak['VmPeak']} MiB, VmHWM {peak['VmHWM']} MiB, "
                    f"{r['elapsed_s']} s, error={(r['error'] or {}).get('code')}"
                    f" {(r['error'] or {}).get('message', '')!r}, verdict={r['verdict']}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
