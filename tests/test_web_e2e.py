"""The web page end to end: real API server + headless Debian Chromium via Playwright.

Starts the service (``create_app``) with uvicorn on an ephemeral loopback port, with API
keys required and the test detectors of ``web_e2e_plugin`` (which produce a heatmap and
per-frame timelines), then drives the page like a user: save the API key, choose a
synthesised video, wait for the verdict, check the overlay, slider and chart, download
the reports. Screenshots go to ``test-output/``.

Needs the Debian ``chromium`` package (scripts/apt-packages.txt); never
``playwright install``. Skipped when Chromium is missing, except in CI (``CI`` set),
where it must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from synth import write_video

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "test-output"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HOSTILE = "<script>alert(1)</script>"

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Debian chromium not installed (apt-get install chromium); "
                "this test is mandatory when CI is set", allow_module_level=True)

from playwright.sync_api import Page, sync_playwright  # noqa: E402 - after the skip

from antifake.service.api import create_app  # noqa: E402
from antifake.service.auth import create_api_key  # noqa: E402
from antifake.service.settings import ServiceSettings  # noqa: E402


@dataclass
class RunningServer:
    base_url: str
    api_key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    import uvicorn

    data_dir = tmp_path_factory.mktemp("service")
    settings = ServiceSettings(
        data_dir=data_dir, workers=1, auth_required=True, pepper="e2e-test-pepper",
        detectors=("e2e_heatmap", "e2e_temporal", "metadata"),
        plugin_modules=("web_e2e_plugin",), default_sampling="fps=8,max=64",
        daily_quota=None,
    )
    api_key = create_api_key("e2e", settings)
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", api_key)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture()
def page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800},
                                          accept_downloads=True)
            yield context.new_page()
        finally:
            browser.close()


def _shot(page: Page, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


def test_upload_video_shows_verdict_overlay_timeline(
    server: RunningServer, page: Page, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "clip <img src=x onerror=alert(1)>.mp4", frames=36,
                        width=320, height=180, fps=12, metadata={"title": HOSTILE})
    problems: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error"
            else None)
    page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
    page.on("request", lambda r: requests.append(r.url))

    page.goto(server.base_url + "/")
    assert page.title().startswith("antifake")
    _shot(page, "web-01-empty.png")

    # Without a key the server refuses the upload and the page says why.
    page.set_input_files("#file-input", str(video))
    page.wait_for_selector("#error:not([hidden])", timeout=15_000)
    assert "API key" in page.inner_text("#error")
    problems.clear()  # the 401 is logged by Chromium as a failed resource: expected

    page.click("#settings summary")
    page.fill("#api-key", server.api_key)
    _shot(page, "web-00-api-key.png")
    page.click("#key-form button[type=submit]")
    assert page.evaluate("localStorage.getItem('antifake.apiKey')") == server.api_key
    page.click("#settings summary")

    page.set_input_files("#file-input", str(video))
    page.wait_for_selector("#results:not([hidden])", timeout=90_000)
    assert page.inner_text("#verdict") == "AI-generated"
    # The hostile file name (the service sanitises it) is shown as text, never markup.
    assert page.inner_text("#file-name").startswith("clip ")
    assert page.locator("#file-name img").count() == 0
    assert "Test Diffusion" in page.inner_text("#generator")
    assert page.inner_text("#probability").endswith("%")

    # Heatmap overlay: loaded, same pixel size as the frame, stacked on it.
    page.wait_for_function(
        "() => { const h = document.getElementById('heatmap-img'), "
        "f = document.getElementById('frame-img'); "
        "return h.complete && h.naturalWidth > 0 && f.complete && f.naturalWidth > 0; }",
        timeout=30_000,
    )
    sizes = page.evaluate(
        "() => { const h = document.getElementById('heatmap-img'), "
        "f = document.getElementById('frame-img'), hb = h.getBoundingClientRect(), "
        "fb = f.getBoundingClientRect(); return {hw: h.naturalWidth, hh: h.naturalHeight, "
        "fw: f.naturalWidth, fh: f.naturalHeight, dx: Math.abs(hb.x - fb.x), "
        "dy: Math.abs(hb.y - fb.y), dw: Math.abs(hb.width - fb.width), "
        "dh: Math.abs(hb.height - fb.height)}; }"
    )
    assert (sizes["hw"], sizes["hh"]) == (sizes["fw"], sizes["fh"]) == (320, 180)
    assert max(sizes["dx"], sizes["dy"], sizes["dw"], sizes["dh"]) < 1.0

    # Timeline canvas: drawn, two series, and really has coloured pixels on it.
    assert page.get_attribute("#timeline-canvas", "data-drawn") == "true"
    assert page.get_attribute("#timeline-canvas", "data-series") == "2"
    coloured = page.evaluate(
        "() => { const c = document.getElementById('timeline-canvas'); "
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; "
        "let n = 0; for (let i = 0; i < d.length; i += 4) "
        "{ if (d[i+3] > 0 && Math.abs(d[i] - d[i+2]) > 60) n++; } return n; }"
    )
    assert coloured > 200
    legend = page.inner_text("#timeline-legend")
    assert "e2e_heatmap" in legend and "e2e_temporal" in legend
    # Per-detector curves carry no fused threshold (issue 10: an authentic video's
    # temporal curve crossing it read as AI frames).
    assert "threshold" not in legend

    # Evidence list: every detector, strings from the server shown literally.
    evidence = page.inner_text("#evidence")
    for name in ("e2e_heatmap", "e2e_temporal", "metadata"):
        assert name in evidence
    assert "<b>not bold</b>" in evidence
    assert page.locator("#evidence b").count() == 0

    _shot(page, "web-02-result-video.png")
    _shot(page, "web-02-result-video-full.png", full_page=True)

    # The opacity slider drives the overlay's opacity.
    def overlay_opacity() -> float:
        return float(page.evaluate(
            "getComputedStyle(document.getElementById('heatmap-img')).opacity"))

    assert overlay_opacity() == pytest.approx(0.6, abs=0.01)
    page.focus("#opacity")
    page.keyboard.press("Home")
    page.wait_for_timeout(150)  # the CSS transition
    assert overlay_opacity() == pytest.approx(0.0, abs=0.01)
    assert page.inner_text("#opacity-value") == "0%"
    _shot(page, "web-03-opacity-0.png")
    page.fill("#opacity", "85")
    page.wait_for_timeout(150)
    assert overlay_opacity() == pytest.approx(0.85, abs=0.01)

    # Report links point at the contract's endpoints and work with the saved key.
    assert (page.get_attribute("#report-html", "href") or "").endswith("/report")
    assert (page.get_attribute("#report-pdf", "href") or "").endswith("/report?format=pdf")
    with page.expect_download(timeout=30_000) as dl_info:
        page.click("#report-html")
    report_html = Path(dl_info.value.path()).read_text(encoding="utf-8")
    assert "antifake forensic report" in report_html and "<script" not in report_html.lower()
    assert dl_info.value.suggested_filename.endswith(".antifake-report.html")
    with page.expect_download(timeout=60_000) as dl_info:
        page.click("#report-pdf")
    assert Path(dl_info.value.path()).read_bytes().startswith(b"%PDF-")

    assert problems == []
    foreign = [u for u in requests if not u.startswith((server.base_url, "blob:", "data:"))]
    assert foreign == []


def test_upload_image_has_no_timeline(server: RunningServer, page: Page, tmp_path: Path) -> None:
    from synth import write_image

    image = write_image(tmp_path / "photo.png", width=400, height=260)
    page.goto(server.base_url + "/")
    page.evaluate(f"localStorage.setItem('antifake.apiKey', {server.api_key!r})")
    page.reload()
    page.set_input_files("#file-input", str(image))
    page.wait_for_selector("#results:not([hidden])", timeout=60_000)
    assert page.inner_text("#verdict") == "AI-generated"
    assert page.is_hidden("#timeline")
    page.wait_for_function(
        "() => { const h = document.getElementById('heatmap-img'); "
        "return h.complete && h.naturalWidth === 400 && h.naturalHeight === 260; }",
        timeout=30_000,
    )
    _shot(page, "web-04-result-image.png")


def test_several_files_job_list_and_video_playback(
    server: RunningServer, page: Page, tmp_path: Path
) -> None:
    """Issue 10: several files at once give a job list (each line its verdict, a finished
    one shown on click); a video plays in the page from the local file, and a click on the
    timeline seeks it, with the scores under the playhead."""
    from synth import write_image

    clip = write_video(tmp_path / "clip.webm", container="webm", codec="libvpx-vp9",
                       frames=48, width=320, height=180, fps=12)
    image = write_image(tmp_path / "photo.png", width=320, height=200)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda m: problems.append(f"console: {m.text} {m.location}")
            if m.type == "error" else None)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(server.base_url + "/")
    page.evaluate(f"localStorage.setItem('antifake.apiKey', {server.api_key!r})")
    page.reload()
    page.set_input_files("#file-input", [str(image), str(clip)])
    page.wait_for_selector("#jobs:not([hidden])", timeout=30_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#job-list .job')]"
        ".every((li) => li.dataset.status === 'succeeded')", timeout=90_000)
    lines = page.locator("#job-list .job")
    assert lines.count() == 2
    assert "photo.png" in lines.nth(0).inner_text() and "clip.webm" in lines.nth(1).inner_text()
    assert all("AI-generated" in lines.nth(i).inner_text() for i in range(2))
    page.wait_for_selector("#results:not([hidden])")
    page.click("#job-list .job:nth-child(2) button.job-name")
    page.wait_for_function("() => document.getElementById('file-name').textContent"
                           ".startsWith('clip')", timeout=30_000)
    assert page.is_visible("#timeline")
    page.wait_for_function("() => { const v = document.getElementById('player'); "
                           "return !v.hidden && v.src.startsWith('blob:') && v.readyState >= 1; }",
                           timeout=30_000)
    page.locator("#timeline-canvas").scroll_into_view_if_needed()
    box = page.locator("#timeline-canvas").bounding_box()
    assert box is not None
    # Click at about 3/4 of the plotted time axis: the video seeks there.
    page.mouse.click(box["x"] + 44 + 0.75 * (box["width"] - 56), box["y"] + box["height"] / 2)
    page.wait_for_function("() => document.getElementById('player').currentTime > 1.5",
                           timeout=10_000)
    assert "@" in page.inner_text("#timeline-readout")
    _shot(page, "web-05-jobs-and-playback.png", full_page=True)
    # The meta-delivered frame-ancestors notice is Chromium's, at load (the server sends the
    # header too); every other console error is a failure.
    problems = [p for p in problems if "frame-ancestors" not in p]
    assert problems == [], (problems, missing)
