"""Frame-level progress with an ETA for one analysis.

The engine's progress callback used to move once per detector, so a long video sat at
``0/1`` for minutes (issue 10). :class:`ProgressMeter` counts frames too: every frame a
detector decodes (through :class:`CountingMedia`) is a unit of work, against the total
expected from the clip's duration and the sampling, reported at most a few times a second
with a label such as ``forensic_image · frame 120 of ~600 · about 35 s left``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from antifake.config import FrameSampling
from antifake.media.types import Frame, MediaInfo

# Called as progress(file, done units, total units, label) while a file is analysed.
ProgressCallback = Callable[[str, int, int, str], None]
MIN_INTERVAL_S = 0.4  # between two frame-driven reports


def expected_frames(info: MediaInfo, sampling: FrameSampling) -> int:
    """How many frames one pass over the media will yield (an estimate; >= 1)."""
    if info.media_type == "image":
        return 1
    if info.media_type == "audio":
        return 0
    duration = info.duration_s or 0.0
    if sampling.mode == "all":
        n = info.frame_count or (duration * (info.fps or 25.0))
    elif sampling.mode == "fps":
        n = duration * sampling.fps + 1
    else:  # keyframes: about one every 2 s in common encodes
        n = duration / 2 + 1
    if sampling.max_frames is not None:
        n = min(n, sampling.max_frames)
    return max(1, int(math.ceil(n)))


def _eta(seconds: float) -> str:
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    return f"about {seconds / 60:.0f} min left"


class ProgressMeter:
    """Thread-safe progress of one analysis (detectors run on several threads).

    Units: ``frames_per_pass`` per detector (1 for an image, so a still image reports
    exactly one step per detector as before). Detector ``i`` starting reports ``i x
    frames_per_pass``; every frame any detector decodes adds one unit; reports never go
    backwards and never reach the total before ``finish``.
    """

    def __init__(self, file: str, callback: ProgressCallback, frames_per_pass: int,
                 detectors: int) -> None:
        self.file = file
        self.callback = callback
        self.per_pass = max(1, frames_per_pass)
        self.total = max(1, detectors * self.per_pass)
        self.frames = 0
        self.reported = 0
        self.stage = ""
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._last = 0.0

    def _report(self, step: int, label: str) -> None:
        self.reported = max(self.reported, min(step, self.total - 1))
        self._last = time.monotonic()
        self.callback(self.file, self.reported, self.total, label)

    def detector_started(self, index: int, name: str) -> None:
        with self._lock:
            self.stage = name
            self._report(index * self.per_pass, name)

    def frame(self) -> None:
        if self.per_pass <= 1:
            return
        with self._lock:
            self.frames += 1
            if time.monotonic() - self._last < MIN_INTERVAL_S:
                return
            step = min(self.frames, self.total - 1)
            parts = [self.stage, f"frame {self.frames} of ~{self.total}"]
            elapsed = time.monotonic() - self._t0
            if step > 0 and elapsed > 1.0:
                parts.append(_eta(elapsed * (self.total - step) / step))
            self._report(step, " \u00b7 ".join(p for p in parts if p))

    def finish(self, label: str) -> None:
        with self._lock:
            self.reported = self.total
            self.callback(self.file, self.total, self.total, label)


class CountingMedia:
    """A media object whose ``frames()`` tells a :class:`ProgressMeter` about each frame;
    everything else is the wrapped media's."""

    def __init__(self, media: Any, meter: ProgressMeter) -> None:
        self._media = media
        self._meter = meter
        self.info = media.info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._media, name)

    def frames(self, sampling: Any = None) -> Iterator[Frame]:
        for frame in self._media.frames(sampling):
            self._meter.frame()
            yield frame
