"""Audio verdict latency and memory: a whole ``Engine.analyze`` of speech-like audio.

Each iteration analyses one file with the default engine (sniff, metadata, C2PA check,
decode to 16 kHz mono, ``synthetic_speech`` windows + ONNX, fusion). Reports the median
and p90 wall time over ``--runs`` per clip length and codec, and the process's peak RSS
after each length (``ru_maxrss``, so it only grows: flat across lengths means memory does
not grow with duration). Usage (repo root, venv active)::

    PYTHONPATH=src:tests python bench/bench_audio.py --runs 20
    PYTHONPATH=src:tests python bench/bench_audio.py --seconds 30,600,1800 --runs 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import synth  # noqa: E402
from antifake.engine import Engine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seconds", default="30", help="comma list of clip lengths")
    ap.add_argument("--codecs", default="mp3,wav", help="comma list: mp3, wav, flac, m4a")
    a = ap.parse_args()
    codecs = {"mp3": ("mp3", "libmp3lame"), "wav": ("wav", "pcm_s16le"),
              "flac": ("flac", "flac"), "m4a": ("ipod", "aac")}
    engine = Engine()
    print("| clip | codec | median ms | p90 ms | windows | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (float(s) for s in a.seconds.split(",")):
            for name in a.codecs.split(","):
                container, codec = codecs[name]
                path = synth.write_audio(Path(tmp) / f"voice.{name}",
                                         synth.voice_like(seconds, seed=1),
                                         container=container, codec=codec)
                times = []
                windows = 0
                for i in range(a.warmup + a.runs):
                    t0 = time.perf_counter()
                    result = engine.analyze(path)
                    dt = (time.perf_counter() - t0) * 1000
                    if result.error:
                        raise SystemExit(f"analysis failed: {result.error}")
                    if i >= a.warmup:
                        times.append(dt)
                    speech = [d for d in result.detectors if d.detector == "synthetic_speech"]
                    windows = len(speech[0].timeline or []) if speech else 0
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                p90 = sorted(times)[max(0, int(0.9 * len(times)) - 1)]
                print(f"| {seconds:g} s | {name} | {statistics.median(times):.0f} | {p90:.0f} "
                      f"| {windows} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
