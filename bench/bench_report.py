"""Report size and rendering time for typical files (issue 10: <= 3 pages, <= 2 s).

For each case (a 4 s 640x360 H.264 clip, a 1024x768 JPEG photo, a 10 s MP3 voice clip,
all synthesised) the default engine analyses the file once, then the HTML and the PDF
report are rendered ``--runs`` times after one warm-up; prints the median times and the
PDF's page count. Usage (repo root, venv active)::

    PYTHONPATH=src:tests python bench/bench_report.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import synth  # noqa: E402
from antifake.engine import Engine  # noqa: E402
from antifake.report.html import (  # noqa: E402
    render_report_document,
    render_report_html,
    render_report_pdf,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    engine = Engine()
    print("| file | HTML median s | PDF median s (incl. HTML) | PDF pages | PDF KiB |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cases = {
            "4 s 640x360 H.264 clip": synth.write_video(d / "clip.mp4", frames=96, fps=24,
                                                        width=640, height=360),
            "1024x768 JPEG photo": synth.write_image(d / "photo.jpg", width=1024, height=768),
            "10 s MP3 voice": synth.write_audio(d / "voice.mp3", synth.voice_like(10.0),
                                                codec="libmp3lame"),
        }
        for name, path in cases.items():
            result = engine.analyze(path)
            render_report_pdf(result, path)  # warm-up (fonts, Pango)
            html_t, pdf_t = [], []
            pdf = b""
            for _ in range(a.runs):
                t0 = time.perf_counter()
                render_report_html(result, path)
                html_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                pdf = render_report_pdf(result, path)
                pdf_t.append(time.perf_counter() - t0)
            pages = len(render_report_document(result, path).pages)
            print(f"| {name} | {statistics.median(html_t):.2f} | "
                  f"{statistics.median(pdf_t):.2f} | {pages} | {len(pdf) // 1024} |",
                  flush=True)


if __name__ == "__main__":
    main()
