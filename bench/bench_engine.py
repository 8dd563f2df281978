"""Whole-engine latency and video throughput of the default detectors.

Synthesises its inputs (textured 1024x1024 and 512x384 JPEGs, a 1280x720 H.264 clip),
runs ``Engine().analyze`` (default detectors, default sampling, heatmaps on) after warm-up
and reports, per input:

* images: median / p90 / min of the whole verdict (``AnalysisResult.elapsed_ms``: open,
  sniff, sha256, metadata, decode, every detector, fusion) and the median of each
  detector's ``DetectorResult.elapsed_ms``;
* video: wall time of the whole verdict and **analysed frames/s** = (frames the detectors
  looked at) / wall time, where frames looked at = forensic_image ``frames_scored`` +
  watermark ``frames_checked`` + splicing ``frames`` + temporal ``pairs`` (each pair is
  one more frame compared with its predecessor); the clip's own frames/s (clip frames /
  wall time) is printed next to it, and **distinct frames/s** = (frames at least one
  detector scored: the largest per-detector count, temporal's pairs + 1) / wall time,
  which is what a user counts (``--sampling all`` on a 30 fps clip: the clip's frame
  rate if every frame was scored in real time). Peak RSS (``ru_maxrss``) is measured in a fresh
  subprocess per clip, so a long clip shows whether memory stays flat in video length.

Usage (repo root, venv active)::

    PYTHONPATH=src python bench/bench_engine.py --runs 30
    PYTHONPATH=src python bench/bench_engine.py --runs 0 --video-seconds 10 --long-seconds 600
    PYTHONPATH=src python bench/bench_engine.py --profile 1024   # cProfile top functions
    PYTHONPATH=src python bench/bench_engine.py --detector-threads 3   # Engine(detector_threads=3)
    PYTHONPATH=src python bench/bench_engine.py --runs 0 --video-seconds 10 --sampling all
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def make_jpeg(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """Photo-like textured JPEG (gradients + noise + flat shapes), quality 90."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([x / width * 200, y / height * 200, (x / width + y / height) * 127],
                   axis=-1)
    img += rng.normal(0, 10, img.shape)
    for _ in range(30):
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(10, max(11, min(width, height) // 7)))
        img[max(0, cy - r): cy + r, max(0, cx - r): cx + r] = rng.integers(0, 255, 3)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def make_clip(path: Path, frames: int, width: int = 1280, height: int = 720,
              fps: int = 30) -> Path:
    """A 720p H.264 clip: a textured colour scene panning 3 px per frame plus noise."""
    import av
    import cv2

    rng = np.random.default_rng(0)
    scene_w = width + 3 * min(frames, 2000) + 8
    scene = cv2.resize(rng.normal(128, 40, (height // 8, scene_w // 8, 3)).astype(np.float32),
                       (scene_w, height))
    noise = [rng.normal(0, 2, (height, width, 1)).astype(np.float32) for _ in range(8)]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "23", "preset": "ultrafast"}
        for i in range(frames):
            x = (3 * i) % (scene_w - width)
            rgb = np.clip(scene[:, x:x + width] + noise[i % 8], 0, 255).astype(np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def bench_image(engine: object, path: Path, runs: int, warmup: int) -> dict[str, object]:
    totals: list[float] = []
    per_det: dict[str, list[float]] = {}
    result = None
    for i in range(warmup + runs):
        result = engine.analyze(path)  # type: ignore[attr-defined]
        assert result.error is None, result.error
        if i < warmup:
            continue
        totals.append(result.elapsed_ms)
        for d in result.detectors:
            per_det.setdefault(d.detector, []).append(d.elapsed_ms or 0.0)
    assert result is not None
    return {
        "median_ms": round(statistics.median(totals), 1),
        "p90_ms": round(_pct(totals, 0.9), 1),
        "min_ms": round(min(totals), 1),
        "detectors_median_ms": {k: round(statistics.median(v), 1) for k, v in per_det.items()},
        "verdict": result.verdict,
        "ai_probability": result.ai_probability,
        "heatmap": any(d.heatmap is not None for d in result.detectors),
    }


def analysed_frames(result: object) -> int:
    """Frames the detectors looked at (see the module docstring for the definition)."""
    n = 0
    for d in result.detectors:  # type: ignore[attr-defined]
        det = d.details or {}
        n += int(det.get("frames_scored", 0) or 0) + int(det.get("frames_checked", 0) or 0)
        if d.detector == "splicing":
            n += int(det.get("frames", 0) or 0)
        n += int(det.get("pairs", 0) or 0)
    return n


def distinct_frames(result: object) -> int:
    """Frames at least one detector scored (the largest per-detector count)."""
    best = 0
    for d in result.detectors:  # type: ignore[attr-defined]
        det = d.details or {}
        n = max(int(det.get("frames_scored", 0) or 0), int(det.get("frames_checked", 0) or 0),
                int(det.get("frames", 0) or 0) if d.detector == "splicing" else 0,
                int(det.get("pairs", 0) or 0) + 1 if det.get("pairs") else 0)
        best = max(best, n)
    return best


def _engine(detector_threads: int, sampling: str | None = None) -> Any:
    """``Engine()`` as the CLI makes it (allocator tuned; ``ANTIFAKE_MALLOC_TUNING=0``
    turns that off), or with ``detector_threads`` when it is > 0."""
    from antifake.engine import Engine

    try:
        from antifake.allocator import tune_allocator
    except ImportError:  # older trees (before/after comparisons)
        pass
    else:
        tune_allocator()
    kwargs: dict[str, Any] = {}
    if sampling:
        from antifake.config import AnalysisOptions, FrameSampling

        kwargs["options"] = AnalysisOptions(sampling=FrameSampling.parse(sampling))
    # Older trees have no detector_threads argument.
    if detector_threads > 0:
        kwargs["detector_threads"] = detector_threads
    return Engine(**kwargs)


def video_child(path: str, detector_threads: int = 0,
                sampling: str | None = None) -> dict[str, object]:
    """Run in a fresh process: one warm-up-free whole-engine verdict on the clip."""
    engine: Any = _engine(detector_threads, sampling)
    t0 = time.perf_counter()
    result = engine.analyze(path)
    wall = time.perf_counter() - t0
    assert result.error is None, result.error
    frames = analysed_frames(result)
    clip_frames = int(result.media.get("frame_count") or 0) if result.media else 0
    return {
        "clip_frames": clip_frames,
        "wall_s": round(wall, 2),
        "analysed_frames": frames,
        "analysed_frames_per_s": round(frames / wall, 1),
        "distinct_frames": distinct_frames(result),
        "distinct_frames_per_s": round(distinct_frames(result) / wall, 1),
        "clip_frames_per_s": round(clip_frames / wall, 1),
        "detectors_ms": {d.detector: round(d.elapsed_ms or 0.0) for d in result.detectors},
        "verdict": result.verdict,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="timed runs per image (0: skip)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--video-seconds", type=float, default=10.0, help="0: skip video")
    ap.add_argument("--long-seconds", type=float, default=0.0,
                    help="also a long clip of this many seconds (600 = 10 minutes)")
    ap.add_argument("--profile", choices=["1024", "512", "video"], default=None,
                    help="cProfile one input instead of benchmarking")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    ap.add_argument("--detector-threads", type=int, default=0,
                    help="Engine(detector_threads=N); 0 (default): Engine()'s own default")
    ap.add_argument("--sampling", default=None,
                    help="video frame sampling (e.g. all, fps=2,max=64); default: Engine's")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(video_child(args.child, args.detector_threads, args.sampling)))
        return 0

    out: dict[str, object] = {
        "nproc": os.cpu_count(),
        "detector_threads": args.detector_threads or "default",
        "malloc_tuning": os.environ.get("ANTIFAKE_MALLOC_TUNING", "1") != "0",
        "loadavg_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        big = make_jpeg(tmpd / "1024.jpg", 1024, 1024)
        small = make_jpeg(tmpd / "512x384.jpg", 512, 384, seed=1)
        if args.profile:
            target = {"1024": big, "512": small}.get(args.profile)
            if target is None:
                target = make_clip(tmpd / "clip.mp4", int(args.video_seconds * 30))
            engine = _engine(args.detector_threads)
            for _ in range(2):
                engine.analyze(target)
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(1 if args.profile == "video" else 10):
                engine.analyze(target)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
            return 0
        if args.runs > 0:
            engine = _engine(args.detector_threads)
            out["image_1024x1024_jpeg"] = bench_image(engine, big, args.runs, args.warmup)
            out["image_512x384_jpeg"] = bench_image(engine, small, args.runs, args.warmup)
        clips = []
        if args.video_seconds > 0:
            clips.append(("video_720p", args.video_seconds))
        if args.long_seconds > 0:
            clips.append(("video_720p_long", args.long_seconds))
        for name, seconds in clips:
            clip = make_clip(tmpd / f"{name}.mp4", int(round(seconds * 30)))
            r = subprocess.run([sys.executable, __file__, "--child", str(clip),
                                "--detector-threads", str(args.detector_threads),
                                *(["--sampling", args.sampling] if args.sampling else [])],
                               capture_output=True, text=True, check=True)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            res["seconds"] = seconds
            out[name] = res
            clip.unlink()
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
