"""Durability check: queue 50 video jobs, SIGKILL the server mid-way, restart, verify all 50.

Starts `antifake serve` as a separate process (own process group, so the kill also takes
its analysis processes, like a power cut of the host process tree), submits the videos in
one request, kills it once --kill-after jobs have succeeded, restarts it on the same data
dir and polls until every job has finished. Exit status 1 if any job was lost or failed.

    PYTHONPATH=src:tests python bench/restart_jobs.py --jobs 50 --kill-after 15
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from _server import free_port, kill, start

from synth import write_video


def statuses(client: httpx.Client, base: str, ids: list[str]) -> dict[str, dict]:
    return {i: client.get(f"{base}/v1/jobs/{i}").json() for i in ids}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--kill-after", type=int, default=15, help="succeeded jobs before the kill")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        videos = [write_video(tmpd / f"clip{i}.mp4", frames=36, width=160, height=120,
                              seed=i).read_bytes() for i in range(5)]
        data_dir, port = tmpd / "data", free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmpd / "server.log"
        server = start(data_dir, port, args.workers, ["--no-auth"], log=log)
        t0 = time.monotonic()
        client = httpx.Client(timeout=60)
        files = [("file", (f"clip{i}.mp4", videos[i % len(videos)])) for i in range(args.jobs)]
        r = client.post(f"{base}/v1/jobs", files=files)
        r.raise_for_status()
        ids = [j["id"] for j in r.json()["jobs"]]
        assert len(ids) == args.jobs

        deadline = t0 + args.timeout
        while True:  # bounded by the deadline
            st = statuses(client, base, ids)
            done = sum(1 for j in st.values() if j["status"] == "succeeded")
            if done >= args.kill_after or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        at_kill = Counter(j["status"] for j in st.values())
        kill(server)  # SIGKILL to the whole process group
        killed_at = time.monotonic() - t0

        t_restart = time.monotonic()
        server = start(data_dir, port, args.workers, ["--no-auth"], log=log)
        restart_s = time.monotonic() - t_restart
        try:
            while True:
                st = statuses(client, base, ids)
                if all(j["status"] in ("succeeded", "failed") for j in st.values()):
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        finally:
            kill(server)
        total_s = time.monotonic() - t0
        final = Counter(j["status"] for j in st.values())
        report = {
            "jobs": args.jobs, "server_workers": args.workers,
            "status_at_kill": dict(at_kill), "killed_after_s": round(killed_at, 1),
            "restart_to_ready_s": round(restart_s, 1), "final": dict(final),
            "lost": args.jobs - sum(final.values()),
            "attempts": dict(Counter(j["attempts"] for j in st.values())),
            "total_s": round(total_s, 1),
        }
        print(json.dumps(report, indent=2))
        return 0 if final.get("succeeded", 0) == args.jobs else 1


if __name__ == "__main__":
    raise SystemExit(main())
