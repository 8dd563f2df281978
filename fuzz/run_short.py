"""Run every harness briefly against fresh seed corpora (the CI fuzz step).

    python fuzz/run_short.py [--seconds-each 8] [--corpus DIR] [--artifacts DIR]

Exit status 0 when no harness found a crash; otherwise the crashing inputs are left in the
artifacts directory (default fuzz/artifacts/) and listed. For a long run, see
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = {
    "sniff": ("fuzz_sniff.py", 8192),
    "metadata": ("fuzz_metadata.py", 65536),
    "media": ("fuzz_media.py", 65536),
}


def run(seconds_each: float, corpus: Path, artifacts: Path,
        only: list[str] | None = None) -> list[tuple[str, int, float, str]]:
    """Run each harness for ``seconds_each``; (name, exit code, seconds, output tail)."""
    sys.path.insert(0, str(HERE))
    from make_seeds import write_seeds

    write_seeds(corpus)
    artifacts.mkdir(parents=True, exist_ok=True)
    results = []
    for name, (script, max_len) in HARNESSES.items():
        if only and name not in only:
            continue
        cmd = [
            sys.executable, str(HERE / script), str(corpus / name),
            f"-max_total_time={max(1, int(seconds_each))}", f"-max_len={max_len}",
            "-timeout=10", "-rss_limit_mb=512", "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/{name}-",
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=seconds_each + 120, errors="replace")
        elapsed = time.perf_counter() - t0
        results.append((name, proc.returncode, elapsed, (proc.stdout + proc.stderr)[-4000:]))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="short fuzz run of every harness")
    ap.add_argument("--seconds-each", type=float, default=8.0)
    ap.add_argument("--corpus", type=Path, default=None,
                    help="corpus root (default: a fresh temporary directory)")
    ap.add_argument("--artifacts", type=Path, default=HERE / "artifacts")
    ap.add_argument("--only", nargs="*", default=None, choices=sorted(HARNESSES))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or Path(tmp)
        results = run(args.seconds_each, corpus, args.artifacts, args.only)
    failed = 0
    for name, rc, elapsed, tail in results:
        stats = [ln for ln in tail.splitlines() if ln.startswith("stat::number_of_executed")
                 or "cov:" in ln][-1:]
        print(f"{name:9s} exit={rc} {elapsed:5.1f}s {' '.join(stats)}")
        if rc != 0:
            failed += 1
            print(tail)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
