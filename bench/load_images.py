"""Load test: drive POST /v1/detect with images at a fixed rate and report latency.

Starts `antifake serve` (API keys on, default detectors) as a separate process on loopback,
then sends requests open-loop at --rate per second for --duration seconds from this
process (httpx, a bounded thread pool) and prints throughput, p50/p99 latency and errors.

    PYTHONPATH=src:tests python bench/load_images.py --rate 20 --duration 60 --workers 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _server import create_key, free_port, kill, start

from synth import write_image


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds")
    ap.add_argument("--workers", type=int, default=2, help="server analysis processes")
    ap.add_argument("--concurrency", type=int, default=32, help="client threads")
    ap.add_argument("--size", default="512x384", help="image WxH")
    ap.add_argument("--detectors", default=None, help="comma-separated (default: server's)")
    ap.add_argument("--warmup", type=int, default=4,
                    help="untimed requests per server worker first (model loading)")
    args = ap.parse_args()

    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        images = [write_image(tmpd / f"img{i}.jpg", width=w, height=h, seed=i, quality=90)
                  .read_bytes() for i in range(8)]
        data_dir = tmpd / "data"
        key = create_key(data_dir, rate=args.rate * 5)
        port = free_port()
        server = start(data_dir, port, args.workers, ["--auth"], log=tmpd / "server.log")
        total = int(args.rate * args.duration)
        try:
            url = f"http://127.0.0.1:{port}/v1/detect"
            form = {"detectors": args.detectors} if args.detectors else {}
            with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {key}"}) as warm, \
                    ThreadPoolExecutor(args.workers) as wpool:
                list(wpool.map(lambda i: warm.post(url, data=form, files={
                    "file": (f"w{i}.jpg", images[i % len(images)])}).raise_for_status(),
                    range(args.warmup * args.workers)))
            latencies: list[float] = []
            errors: dict[str, int] = {}
            lock = threading.Lock()
            local = threading.local()

            def one(i: int, scheduled: float) -> None:
                client = getattr(local, "client", None)
                if client is None:
                    client = local.client = httpx.Client(
                        timeout=60, headers={"Authorization": f"Bearer {key}"})
                try:
                    r = client.post(url, data=form,
                                    files={"file": (f"img{i}.jpg", images[i % len(images)])})
                    ok = r.status_code == 200 and r.json().get("error") is None
                    err = None if ok else f"http {r.status_code}"
                except httpx.HTTPError as exc:
                    err = type(exc).__name__
                # Latency from the scheduled send time: queueing in the client counts too
                # (no coordinated omission).
                elapsed = time.perf_counter() - scheduled
                with lock:
                    if err:
                        errors[err] = errors.get(err, 0) + 1
                    else:
                        latencies.append(elapsed)

            with ThreadPoolExecutor(args.concurrency) as pool:
                t0 = time.perf_counter()
                for i in range(total):  # bounded: exactly rate * duration requests
                    scheduled = t0 + i / args.rate
                    delay = scheduled - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(one, i, scheduled)
            wall = time.perf_counter() - t0
        finally:
            kill(server)
        report = {
            "target_rate_per_s": args.rate, "duration_s": args.duration,
            "server_workers": args.workers, "image": args.size,
            "detectors": args.detectors or "server defaults", "requests": total,
            "ok": len(latencies), "errors": errors,
            "throughput_per_s": round(len(latencies) / wall, 2), "wall_s": round(wall, 1),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
