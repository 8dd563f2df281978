"""Run every harness briefly against fresh seed corpora (the CI fuzz step).

    python fuzz/run_short.py [--seconds-each 8] [--seed N] [--corpus DIR] [--artifacts DIR]

Exit status 0 when no harness found a crash; otherwise the crashing inputs are left in the
artifacts directory (default fuzz/artifacts/), listed, and printed as zlib+base64 so a
crash seen only in a CI log can be replayed (``--decode FILE`` turns such a line back into
the input). ``--seed`` fixes libFuzzer's mutation sequence (and PYTHONHASHSEED), so a run
is repeatable: the CI test uses a fixed seed; long exploratory runs use random ones. For a
long run, see docs/reliability.md.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = {
    "sniff": ("fuzz_sniff.py", 8192),
    "metadata": ("fuzz_metadata.py", 65536),
    "media": ("fuzz_media.py", 65536),
}


def run(seconds_each: float, corpus: Path, artifacts: Path,
        only: list[str] | None = None, seed: int = 0,
        unit_timeout: int = 10) -> list[tuple[str, int, float, str]]:
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
            f"-timeout={unit_timeout}", "-rss_limit_mb=512", "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/{name}-",
        ]
        env = dict(os.environ)
        if seed:
            cmd.append(f"-seed={seed}")
            env["PYTHONHASHSEED"] = str(seed)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=seconds_each + 120, errors="replace")
        elapsed = time.perf_counter() - t0
        results.append((name, proc.returncode, elapsed, (proc.stdout + proc.stderr)[-4000:]))
    return results


def encode_artifact(path: Path) -> str:
    """One printable line for a crash input: ``ARTIFACT <name> <zlib+base64 bytes>``."""
    blob = base64.b64encode(zlib.compress(path.read_bytes(), 9)).decode("ascii")
    return f"ARTIFACT {path.name} {blob}"


def decode_artifact(line: str, out_dir: Path) -> Path:
    """Write the input carried by an ``ARTIFACT`` line into ``out_dir``."""
    _, name, blob = line.strip().split(" ", 2)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / Path(name).name
    path.write_bytes(zlib.decompress(base64.b64decode(blob)))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="short fuzz run of every harness")
    ap.add_argument("--seconds-each", type=float, default=8.0)
    ap.add_argument("--unit-timeout", type=int, default=10,
                    help="libFuzzer -timeout: seconds one input may take before it counts "
                         "as a hang")
    ap.add_argument("--seed", type=int, default=0,
                    help="libFuzzer -seed (0: random, the libFuzzer default)")
    ap.add_argument("--decode", type=Path, default=None,
                    help="write the inputs of the ARTIFACT lines in this log file into "
                         "--artifacts and exit")
    ap.add_argument("--corpus", type=Path, default=None,
                    help="corpus root (default: a fresh temporary directory)")
    ap.add_argument("--artifacts", type=Path, default=HERE / "artifacts")
    ap.add_argument("--only", nargs="*", default=None, choices=sorted(HARNESSES))
    args = ap.parse_args(argv)
    if args.decode is not None:
        for line in args.decode.read_text(errors="replace").splitlines():
            if line.startswith("ARTIFACT "):
                print(decode_artifact(line, args.artifacts))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or Path(tmp)
        results = run(args.seconds_each, corpus, args.artifacts, args.only, args.seed,
                      args.unit_timeout)
    failed = 0
    for name, rc, elapsed, tail in results:
        stats = [ln for ln in tail.splitlines() if ln.startswith("stat::number_of_executed")
                 or "cov:" in ln][-1:]
        print(f"{name:9s} exit={rc} {elapsed:5.1f}s {' '.join(stats)}")
        if rc != 0:
            failed += 1
            print(tail)
    if failed and args.artifacts.is_dir():
        # Printed last, so a log that keeps only its tail still carries the inputs.
        for path in sorted(args.artifacts.iterdir()):
            if path.is_file():
                print(encode_artifact(path))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
