"""Throughput and memory of the temporal detector on synthesised 720p video.

    PYTHONPATH=src python bench/bench_video_throughput.py [--frames 300] [--long-frames 3000]

Writes a 1280x720 H.264 clip (textured pan + noise), runs the ``temporal`` detector with
sampling ``all`` (every consecutive pair analysed) through ``open_media``, and reports
analysed frames per second including decoding. Peak RSS is measured in fresh subprocesses
for the short clip and for a long clip, to show memory stays flat in video length.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np


def write_clip(path: Path, frames: int, width: int = 1280, height: int = 720,
               fps: int = 30) -> Path:
    rng = np.random.default_rng(0)
    scene = cv2.resize(rng.normal(128, 40, (height // 8, (width + 3 * frames) // 8 + 1)),
                       ((width + 3 * frames) // 8 * 8 + 8, height)).astype(np.float32)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "23", "preset": "ultrafast"}
        for i in range(frames):
            x = (3 * i) % (scene.shape[1] - width)
            g = scene[:, x:x + width] + rng.normal(0, 2, (height, width)).astype(np.float32)
            rgb = np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, -1)
            for pkt in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def run_once(path: Path, mode: str) -> dict[str, float]:
    from antifake.config import FrameSampling
    from antifake.detectors.base import AnalysisContext
    from antifake.detectors.temporal import TemporalConsistencyDetector
    from antifake.media import open_media

    det = TemporalConsistencyDetector(max_pairs=10**9)
    sampling = FrameSampling(mode="all", max_frames=None) if mode == "all" else FrameSampling()
    t0 = time.perf_counter()
    res = det.analyze(open_media(path), AnalysisContext(sampling=sampling))
    dt = time.perf_counter() - t0
    pairs = int(res.details.get("pairs", 0))
    return {"pairs": pairs, "seconds": round(dt, 2), "frames_per_s": round(pairs / dt, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--long-frames", type=int, default=3000)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_once(Path(args.child[0]), args.child[1])))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = {}
        for name, n in (("short", args.frames), ("long", args.long_frames)):
            clip = write_clip(Path(tmp) / f"{name}.mp4", n)
            r = subprocess.run([sys.executable, __file__, "--child", str(clip), "all"],
                               capture_output=True, text=True, check=True)
            out[f"{name}_{n}_frames_720p_all_pairs"] = json.loads(r.stdout)
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
