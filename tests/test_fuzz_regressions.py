"""Inputs the fuzzers (fuzz/) found, replayed as regression tests, and the bounded CI fuzz
run itself (every harness for a few seconds; ANTIFAKE_FUZZ_SECONDS overrides, 0 skips)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from antifake.media.metadata import bound_metadata

ROOT = Path(__file__).resolve().parent.parent
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"


def _json_size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


@pytest.mark.parametrize("budget", [64, 100, 565, 1000, 4096])
def test_bound_metadata_never_exceeds_its_budget(budget: int) -> None:
    """Found by fuzz_metadata: the bound ignored separators, braces and top-level keys
    (566 bytes kept for a budget of 565), and cut strings at 4 bytes per character although
    JSON escapes a control character as 6 (\\u0001)."""
    nested = {"xmp_fields": {f"k{i}": {"a": ["x" * 7, {"b": "y" * 3}]} for i in range(80)}}
    controls = {"png_text": {"Comment": "\x01" * 50_000}}
    many_keys = {f"group{i}": {"v": "z"} for i in range(200)}
    for md in (nested, controls, many_keys):
        out = bound_metadata(md, budget)
        assert _json_size(out) <= budget, (budget, _json_size(out))
        assert bool(out.get("truncated")) is (_json_size(md) > budget)


def test_bound_metadata_keeps_small_metadata_whole() -> None:
    md = {"exif": {"Make": "Cam", "Model": "X"}, "xmp": "<x/>"}
    assert bound_metadata(md, 4096) == md


@pytest.mark.parametrize("case", sorted(p.name for p in REGRESSIONS.iterdir()))
def test_fuzz_crash_inputs_replay_cleanly(case: str) -> None:
    """Each saved crash input goes through its harness's check (in a subprocess: the
    harness modules import atheris, whose instrumentation must not leak into this run)."""
    harness = case.split("-", 1)[0]
    code = (
        "import sys; sys.argv=['x']; sys.path.insert(0, 'fuzz'); "
        f"import fuzz_{harness} as h; "
        f"h.test_one_input(open({str(REGRESSIONS / case)!r}, 'rb').read()); print('clean')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "clean" in proc.stdout, proc.stderr[-2000:]


MEMORY_REGRESSIONS = {
    # An 8 KiB GIF (48x32 screen) whose third frame sits at y=28686: Pillow's seek() grew
    # the canvas to 1152x71725 and load() allocated ~840 MiB before the pixel limit was
    # checked. Now refused from the size seek() reports.
    "media-gif-frame-outside-screen-oom-6772d7b8": "too_large",
    # A 2.8 KiB WebM (container: 64x48) whose VP9 data declares a huge frame: FFmpeg's
    # decoder allocated ~400 MiB for it. Now capped with the decoder's max_pixels option.
    "media-vp9-huge-frame-in-tiny-webm-oom-a8c9bd3a": "corrupt_media",
    # A 3.7 KiB MP4 whose video track's stsz says 20 million samples of constant size (and
    # stsc 20 million per chunk): FFmpeg's demuxer indexed them all while opening the
    # file, ~1.2 GiB, before any frame count could be checked (CI's fuzz run hit the
    # same class at its 512 MiB RSS limit). Now refused from the box tree (media/bmff.py).
    "media-mp4-20m-declared-samples-oom-eb1e6525": "too_large",
}


@pytest.mark.parametrize("name", sorted(MEMORY_REGRESSIONS))
def test_fuzz_found_memory_blowups_stay_small(name: str) -> None:
    """Found by fuzz_media with -rss_limit_mb: open_media, every frame and
    Engine().analyze must give the stable code with a small peak RSS. In a subprocess, so
    the peak is this file's alone."""
    path = REGRESSIONS / name
    code = (
        "from antifake.config import FrameSampling\n"
        "from antifake.engine import Engine\n"
        "from antifake.errors import AntifakeError\n"
        "from antifake.media import open_media\n"
        "try:\n"
        f"    media = open_media({str(path)!r})\n"
        "    for _ in media.frames(FrameSampling(mode='all', max_frames=None)):\n"
        "        pass\n"
        "    print('accepted')\n"
        "except AntifakeError as exc:\n"
        "    print(exc.code.value)\n"
        f"result = Engine().analyze({str(path)!r})\n"
        "print(result.error['code'] if result.error else 'ok')\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmHWM'):\n"
        "        print(int(line.split()[1]) // 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": "src"})
    lines = proc.stdout.split()
    assert len(lines) == 3, proc.stdout + proc.stderr[-2000:]
    media_code, engine_code, peak_mib = lines
    assert media_code == engine_code == MEMORY_REGRESSIONS[name], lines
    assert int(peak_mib) < 300, f"peak RSS {peak_mib} MiB"


def test_short_fuzz_run_finds_no_crash(tmp_path: Path) -> None:
    """fuzz/run_short.py: every harness (sniff, metadata, media) for a few seconds, with a
    fixed seed so the run is repeatable (ANTIFAKE_FUZZ_SEED overrides; 0 = random). A
    failure's message ends with the crash inputs as ARTIFACT lines:
    ``python fuzz/run_short.py --decode LOG --artifacts DIR`` writes them back.

    One input may take 60 s before it counts as a hang: on a shared, loaded CI machine the
    10 s libFuzzer default flagged slow-but-finite decodes (per-input time bounds are the
    hostile matrix's job, tests/test_hostile_inputs.py); crashes and the 512 MiB RSS limit
    are unchanged."""
    pytest.importorskip("atheris")
    seconds = float(os.environ.get("ANTIFAKE_FUZZ_SECONDS", "7"))
    if seconds <= 0:
        pytest.skip("ANTIFAKE_FUZZ_SECONDS=0")
    proc = subprocess.run(
        [sys.executable, "fuzz/run_short.py", "--seconds-each", str(seconds),
         "--seed", os.environ.get("ANTIFAKE_FUZZ_SEED", "20261124"), "--unit-timeout", "60",
         "--artifacts", str(tmp_path / "artifacts")],
        cwd=ROOT, capture_output=True, text=True, timeout=3 * seconds + 300,
    )
    crashes = sorted(p.name for p in (tmp_path / "artifacts").glob("*"))
    artifact_lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("ARTIFACT ")]
    reasons = [ln for ln in proc.stdout.splitlines()
               if "ERROR: libFuzzer" in ln or "Uncaught Python exception" in ln]
    assert proc.returncode == 0 and not crashes, "\n".join(
        [repr(crashes), *reasons, proc.stdout[-3000:], *artifact_lines])
    assert proc.stdout.count("exit=0") == 3, proc.stdout
