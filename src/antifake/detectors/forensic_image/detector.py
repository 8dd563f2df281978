"""``forensic_image``: learned generator-trace detector for images and video frames.

A frozen ImageNet EfficientNet-Lite0 trunk (blocks 2, 4, 7, 10 and 14; each location's
features and their squares) with a linear probe - or whichever trunk the shipped ONNX file
holds (``forensic_image.json`` names it) - run
fully-convolutionally through onnxruntime on the frame brought to a long side of 384 px.
The probe's logit map (one value per 16x16 working-resolution cell) is the heatmap; its
mean is the frame logit. For video, sampled frames give a timeline, the clip logit is the
mean frame logit, and the heatmap is the most suspicious frame's. A second head gives
generator-family probabilities. See README.md for the data, metrics and limits.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from antifake import models
from antifake.detectors.base import AnalysisContext, too_small_for_learned_model
from antifake.detectors.forensic_image.preprocess import prepare_rgb, to_array
from antifake.detectors.registry import register_detector
from antifake.errors import AntifakeError, ErrorCode
from antifake.generators import resolve_family
from antifake.media.types import Media, MediaType
from antifake.onnx_runtime import SessionCache
from antifake.results import DetectorKind, DetectorResult, GeneratorGuess

MODEL_FILE = "forensic_image.onnx"
CONFIG_FILE = "forensic_image.json"
ORT_THREADS = 2  # intra-op threads when the detector has the machine to itself
# What the heatmap shows, for captions (web page, reports): said by the detector, once.
HEATMAP_MEANING = ("generator traces; warm cells are where the forensic model finds the "
                   "picture more AI-like")


def _sigmoid(z: float | np.ndarray) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


@lru_cache(maxsize=1)
def load_config() -> dict[str, Any]:
    """The model card data shipped next to the ONNX file (classes, thresholds, version)."""
    text = models.read_text(__package__, CONFIG_FILE)
    return dict(json.loads(text))


_sessions = SessionCache(lambda: models.read_bytes(__package__, MODEL_FILE))


def get_session(threads: int = ORT_THREADS) -> Any:
    """The shared onnxruntime session with ``threads`` intra-op threads (created once per
    thread count; ORT sessions are thread-safe).

    One thread when other detectors run beside this one: a second ORT thread would spin
    on the core they use (measured: 1024x1024 verdict 47 ms vs 68 ms with two detector
    threads, docs/benchmarks.md). Spinning is off, so an idle pool gives its core back.
    """
    return _sessions.get(max(1, min(ORT_THREADS, int(threads))))


def score_frame(rgb: np.ndarray, threads: int = ORT_THREADS) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs for one RGB frame: (logits (1+K,), binary logit map (h, w))."""
    x = to_array(prepare_rgb(rgb, int(load_config().get("max_side", 384))))
    logits, logit_map = get_session(threads).run(None, {"image": x})
    return logits[0].astype(np.float64), logit_map[0, 0].astype(np.float32)


@register_detector("forensic_image")
class ForensicImageDetector:
    """Learned generator-trace detector (frozen ImageNet CNN + linear probe, ONNX)."""

    name: ClassVar[str] = "forensic_image"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = str(load_config().get("version", "unknown"))

    def __init__(self, unknown_below: float | None = None) -> None:
        cfg = load_config()
        self.classes: list[str] = list(cfg["classes"])
        self.unknown_below = float(cfg["unknown_below"] if unknown_below is None
                                   else unknown_below)
        self.threshold = float(cfg.get("threshold", 0.5))
        # Per media type: real images and real videos score differently (see README.md).
        self.thresholds = {k: float(v) for k, v in cfg.get("thresholds", {}).items()}

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        small = too_small_for_learned_model(media, self.name, self.kind)
        if small is not None:
            return small
        frame_logits: list[np.ndarray] = []
        times: list[float] = []
        best_map: np.ndarray | None = None
        best = -math.inf
        threads = ORT_THREADS if ctx.cpu_threads is None else ctx.cpu_threads
        for frame in media.frames(ctx.sampling):
            logits, logit_map = score_frame(frame.rgb, threads)
            frame_logits.append(logits)
            times.append(float(frame.time_s))
            if logits[0] > best:
                best, best_map = float(logits[0]), logit_map
        if not frame_logits:
            raise AntifakeError(ErrorCode.CORRUPT_MEDIA, "no frame could be decoded")
        stacked = np.stack(frame_logits)
        clip = stacked.mean(axis=0)
        score = float(_sigmoid(clip[0]))
        family_probs = self._family_probs(clip[1:])
        generator = None
        if family_probs and score >= 0.5:
            family, conf = resolve_family(family_probs, self.unknown_below)
            generator = GeneratorGuess(family=family, probability=conf)
        is_video = media.info.media_type == "video"
        summary = (f"generator-trace model: {score:.2f} probability of AI generation"
                   + (f" over {len(frame_logits)} frames" if is_video else ""))
        threshold = self.thresholds.get(media.info.media_type, self.threshold)
        evidence = []
        if score >= threshold:
            evidence.append(f"learned generator traces above the operating threshold "
                            f"({score:.2f} >= {threshold:.2f})")
        heatmap = (_sigmoid(best_map).astype(np.float32)
                   if ctx.want_heatmaps and best_map is not None else None)
        return DetectorResult(
            detector=self.name, score=score, kind=self.kind, summary=summary,
            evidence=evidence, generator=generator, heatmap=heatmap,
            timeline=[float(_sigmoid(z[0])) for z in stacked] if is_video else None,
            timeline_times_s=times if is_video else None,
            details={"family_probabilities": {k: round(v, 4) for k, v in family_probs.items()},
                     "heatmap_meaning": HEATMAP_MEANING,
                     "frames_scored": len(frame_logits), "threshold": threshold,
                     "heatmap_frame_time_s": times[int(np.argmax(stacked[:, 0]))]},
        )

    def _family_probs(self, logits: np.ndarray) -> dict[str, float]:
        if len(logits) != len(self.classes) or len(logits) == 0:
            return {}
        e = np.exp(logits - logits.max())
        p = e / e.sum()
        return {c: float(v) for c, v in zip(self.classes, p, strict=True)}
