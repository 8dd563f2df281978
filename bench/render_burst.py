"""Memory of the API process under a burst of picture requests (issue 11 item 4).

A small PNG declaring a large picture (default 7000 x 7000 = 49 Mpx, ~150 KB of zeros) is
analysed once with the `c2pa` detector; then ``--parallel`` clients request
``heatmap.png`` / ``frame.png`` of it at the same time. Run once per
``render_concurrency`` value, each in a fresh process; prints the process's peak RSS
(``ru_maxrss``) after the burst, the HTTP statuses and the wall time. Usage::

    PYTHONPATH=src:tests python bench/render_burst.py --concurrency 8
    PYTHONPATH=src:tests python bench/render_burst.py --concurrency 2
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--side", type=int, default=7000)
    a = ap.parse_args()
    import numpy as np
    from fastapi.testclient import TestClient
    from PIL import Image

    from antifake.service.api import create_app
    from service_support import make_settings, wait_job

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        png = d / "big.png"
        Image.fromarray(np.zeros((a.side, a.side), np.uint8)).save(png, optimize=True)
        settings = make_settings(d / "svc", auth_required=False, detectors=("c2pa",),
                                 render_concurrency=a.concurrency, render_wait_s=120.0,
                                 max_upload_bytes=64 * 2**20)
        app = create_app(settings)
        with TestClient(app) as client:
            job = client.post("/v1/jobs", files={"file": ("big.png", png.read_bytes())},
                              data={"detectors": "test_heat,c2pa"}).json()
            done = wait_job(client, job["id"], timeout_s=300)
            assert done["status"] == "succeeded", done
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            codes: list[int] = []

            def get(i: int) -> None:
                path = "heatmap.png" if i % 2 == 0 else "frame.png"
                codes.append(client.get(f"/v1/jobs/{job['id']}/{path}").status_code)

            t0 = time.perf_counter()
            threads = [threading.Thread(target=get, args=(i,)) for i in range(a.parallel)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"render_concurrency={a.concurrency}: {a.parallel} parallel requests of a "
          f"{a.side}x{a.side} PNG: peak RSS {before:.0f} -> {peak:.0f} MiB, "
          f"statuses {dict(Counter(codes))}, {wall:.1f} s")


if __name__ == "__main__":
    main()
