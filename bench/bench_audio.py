"""Audio verdict latency and memory: a whole ``Engine.analyze`` of speech-like audio.

Each measurement runs in a fresh child process (so peak RSS is the analysis's own, not the
synthesis of the test file or an earlier, longer clip): the default engine analyses the
file ``--warmup`` + ``--runs`` times (sniff, metadata, C2PA check, decode to 16 kHz mono,
``synthetic_speech`` windows + ONNX, fusion). Prints median and p90 wall time, the number
of 2 s windows scored and the child's peak RSS (``ru_maxrss``). Files are synthesised
beforehand, also in a child. Usage (repo root, venv active)::

    PYTHONPATH=src:tests python bench/bench_audio.py --runs 10
    PYTHONPATH=src:tests python bench/bench_audio.py --seconds 30,300,1200 --codecs mp3 --runs 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
CODECS = {"mp3": ("mp3", "libmp3lame"), "wav": ("wav", "pcm_s16le"),
          "flac": ("flac", "flac"), "m4a": ("ipod", "aac")}


def _child_write(path: str, seconds: float, codec: str) -> None:
    sys.path.insert(0, str(HERE.parents[1] / "tests"))
    import synth

    container, name = CODECS[codec]
    # Written in 60 s pieces' worth of samples at most at once would need a streaming
    # writer; a 20-minute clip is 77 MB of float32, fine for a one-off child.
    synth.write_audio(Path(path), synth.voice_like(seconds, seed=1), container=container,
                      codec=name)


def _child_analyse(path: str, warmup: int, runs: int) -> None:
    from antifake.engine import Engine

    engine = Engine()
    times = []
    windows = 0
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        result = engine.analyze(path)
        dt = (time.perf_counter() - t0) * 1000
        if result.error:
            raise SystemExit(f"analysis failed: {result.error}")
        if i >= warmup:
            times.append(dt)
        speech = [d for d in result.detectors if d.detector == "synthetic_speech"]
        windows = len(speech[0].timeline or []) if speech else 0
    print(json.dumps({"times": times, "windows": windows,
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seconds", default="30", help="comma list of clip lengths")
    ap.add_argument("--codecs", default="mp3,wav", help="comma list: mp3, wav, flac, m4a")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        if a.child[0] == "write":
            _child_write(a.child[1], float(a.child[2]), a.child[3])
        else:
            _child_analyse(a.child[1], int(a.child[2]), int(a.child[3]))
        return
    print("| clip | codec | median ms | p90 ms | windows | peak RSS MiB (own process) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (float(s) for s in a.seconds.split(",")):
            for codec in a.codecs.split(","):
                path = str(Path(tmp) / f"voice_{seconds:g}.{codec}")
                subprocess.run([sys.executable, str(HERE), "--child", "write", path,
                                str(seconds), codec], check=True)
                out = subprocess.run([sys.executable, str(HERE), "--child", "analyse", path,
                                      str(a.warmup), str(a.runs)], check=True,
                                     capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                t = sorted(r["times"])
                p90 = t[max(0, int(0.9 * len(t)) - 1)]
                print(f"| {seconds:g} s | {codec} | {statistics.median(t):.0f} | {p90:.0f} | "
                      f"{r['windows']} | {r['rss']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
