"""Temporal-consistency detector: does texture move the way physics says it should?"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from antifake.config import FrameSampling
from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.detectors.temporal.features import (
    FEATURE_NAMES,
    iter_frame_pairs,
    keyframe_indices_at_or_before,
    pair_features,
)
from antifake.detectors.temporal.model import PairModel, load_packaged_model
from antifake.media.types import Media, MediaType
from antifake.media.video import SNAP_MIN_SPACING_S
from antifake.results import DetectorKind, DetectorResult

# Below this many analysed pairs the evidence is too thin to state an opinion.
MIN_PAIRS = 2
# Timeline entries with p >= this are described in the evidence.
FLAG_P = 0.7
_EVIDENCE_FEATURES = {
    "brightness_jump": "frame-to-frame brightness flicker",
    "res_energy_jump": "fine-texture energy pulsing",
    "warp_err_norm": "motion-compensated warping error",
    "fb_err": "optical-flow inconsistency",
    "res_flicker": "high-frequency residual flicker",
}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def plan_pairs(
    frame_count: int, fps: float, sampling: FrameSampling, burst: int, max_pairs: int
) -> list[list[int]]:
    """Groups ("bursts") of second-frame indices to analyse, one group per timeline entry.

    ``all``: every pair, grouped ``burst`` at a time. ``fps``/``keyframes``: a burst of
    ``burst`` consecutive pairs every 1/fps seconds (keyframes are not known before
    decoding, so ``keyframes`` uses one burst per second). The sampling's ``max_frames``
    caps the number of bursts, spread over the clip; ``max_pairs`` caps the total.
    """
    if frame_count < 2:
        return []
    last = frame_count - 1
    if sampling.mode == "all":
        starts = list(range(1, last + 1, burst))
    else:
        rate = sampling.fps if sampling.mode == "fps" else 1.0
        step = max(1.0, fps / rate) if fps > 0 else float(burst)
        starts = [int(round(1 + k * step)) for k in range(int((last - 1) / step) + 1)]
    cap = min(sampling.max_frames or len(starts), max(1, max_pairs // burst))
    if len(starts) > cap:
        pos = np.linspace(0, len(starts) - 1, cap).round().astype(int)
        starts = [starts[i] for i in pos]
    groups = []
    for s in starts:
        group = [i for i in range(s, s + burst) if i <= last]
        if group:
            groups.append(group)
    # A short clip must still contribute pairs from every sampled time.
    return groups


def planning_horizon(fps: float, sampling: FrameSampling, burst: int, max_pairs: int) -> int:
    """Frames to plan for when a clip's length is unknown: enough for every burst the caps
    allow (``sampling.max_frames`` bursts, ``max_pairs`` pairs), taken from the start."""
    bursts = max(1, max_pairs // burst)
    if sampling.max_frames:
        bursts = min(bursts, sampling.max_frames)
    if sampling.mode == "all":
        step = float(burst)
    else:
        rate = sampling.fps if sampling.mode == "fps" else 1.0
        step = max(1.0, fps / rate) if fps > 0 else float(burst)
    return int(bursts * step) + burst + 2


def snap_groups_to_keyframes(
    groups: list[list[int]], keyframes: list[int | None]
) -> tuple[list[list[int]], set[int]]:
    """Move sparse bursts next to keyframes, so that each costs a few decodes instead of
    one per frame since the keyframe before it.

    ``keyframes[i]`` is the last keyframe at or before the first frame of ``groups[i]``
    (its second-frame indices minus one), or None. A group moves to the pairs
    (k+1, k+2), (k+2, k+3), ... after its keyframe ``k`` - the keyframe itself is skipped, so
    no pair compares an intra-coded frame with a predicted one, which is rare in an
    unsnapped sample - when ``k`` lies after the previous group's last frame and the moved
    group still ends before the next group starts; otherwise it stays exact. Moved groups
    only ever start earlier than planned, by less than one group spacing (plus one frame).
    Returns the groups and the keyframes they were moved to.
    """
    out: list[list[int]] = []
    used: set[int] = set()
    prev_last = -1
    for i, (group, k) in enumerate(zip(groups, keyframes, strict=True)):
        next_first = groups[i + 1][0] - 1 if i + 1 < len(groups) else math.inf
        if k is not None and prev_last < k <= group[0] - 1 and k + 1 + len(group) < next_first:
            group = list(range(k + 2, k + 2 + len(group)))
            used.add(k)
        out.append(group)
        prev_last = group[-1]
    return out, used


@register_detector("temporal", description="Temporal consistency of motion and texture")
class TemporalConsistencyDetector:
    """Scores video by motion-compensated consistency of consecutive frames.

    Per analysed frame pair: DIS optical flow, warping error, forward-backward flow
    consistency, flow roughness/divergence, high-pass residual flicker and correlation,
    brightness and texture-energy jumps; a small logistic model (``model.json``, trained by
    ``python -m antifake.detectors.temporal.train``) turns them into a per-pair log-odds.
    """

    name: ClassVar[str] = "temporal"
    kind: ClassVar[DetectorKind] = "temporal"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"video"})
    version: ClassVar[str] = "0.1.0"

    def __init__(self, burst: int = 3, max_pairs: int = 192,
                 model: PairModel | None = None) -> None:
        self.burst = max(1, int(burst))
        self.max_pairs = max(1, int(max_pairs))
        self.model = model or load_packaged_model()

    def _no_opinion(self, summary: str) -> DetectorResult:
        return DetectorResult(detector=self.name, score=None, kind=self.kind, summary=summary)

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        info = media.info
        if info.media_type != "video":
            return self._no_opinion("not a video: temporal analysis does not apply")
        if info.animated and info.format == "webp":
            # FFmpeg (which iter_frame_pairs decodes with) cannot decode animated WebP; its
            # error would otherwise fail the whole, valid file as corrupt_media.
            return self._no_opinion("animated WebP: not decodable by FFmpeg, no opinion")
        fps = info.fps or 0.0
        count = info.frame_count
        if count is None and info.duration_s and fps:
            count = int(info.duration_s * fps)
        if count is not None and count < 2:
            return self._no_opinion("fewer than 2 frames: no motion to analyse")
        if count is None:
            # Unknown length (e.g. a WebM written to a pipe): plan from the start only as
            # far as the caps reach. Planning for 10**9 frames took 35 s and 2.7 GiB.
            count = planning_horizon(fps, ctx.sampling, self.burst, self.max_pairs)
        groups = plan_pairs(count, fps, ctx.sampling, self.burst, self.max_pairs)
        keyframes: set[int] = set()
        starts = [g[0] for g in groups]
        if (ctx.sampling.mode == "fps" and fps > 0 and count is not None and len(groups) > 1
                and min(b - a for a, b in zip(starts, starts[1:], strict=False))
                > SNAP_MIN_SPACING_S * fps):
            # Sparse bursts (a long clip): next to keyframes, as the media layer snaps
            # sparse frame samples (FrameSelector.snap_to_keyframes).
            groups, keyframes = snap_groups_to_keyframes(
                groups, keyframe_indices_at_or_before(media.path, [s - 1 for s in starts]))
        wanted = {i for g in groups for i in g}
        group_of = {i: k for k, g in enumerate(groups) for i in g}
        feats: list[np.ndarray] = []
        owners: list[int] = []
        times: dict[int, float] = {}
        indices: dict[int, list[int]] = {}
        for pair in iter_frame_pairs(
            media.path,
            wanted,
            max_decoded_frames=ctx.limits.max_frames,
            max_pixels=ctx.limits.max_video_pixels,
            keyframes=keyframes,
        ):
            k = group_of[pair.index]
            feats.append(pair_features(pair.prev, pair.cur))
            owners.append(k)
            times.setdefault(k, pair.time_s)
            indices.setdefault(k, []).append(pair.index)
        if len(feats) < MIN_PAIRS:
            return self._no_opinion(
                f"only {len(feats)} consecutive frame pair(s) decodable: no opinion"
            )
        x = np.stack(feats)
        logits = self.model.logits(x)
        own = np.array(owners)
        keys = sorted(set(owners))
        timeline = [_sigmoid(float(logits[own == k].mean())) for k in keys]
        timeline_times = [round(times[k], 3) for k in keys]
        clip_logit = float(logits.mean())
        score = _sigmoid(clip_logit)
        evidence = self._evidence(x, own, keys, timeline, indices, times)
        verdict = (
            "inconsistent with camera footage" if score >= 0.65
            else "consistent with camera footage" if score <= 0.35
            else "inconclusive"
        )
        summary = (
            f"temporal consistency {verdict} (p_AI={score:.2f}, {len(feats)} frame pairs "
            f"at {len(keys)} times)"
        )
        details: dict[str, Any] = {
            "pairs": len(feats),
            "bursts_at_keyframes": len(keyframes),
            "clip_logit": round(clip_logit, 3),
            "median_features": {
                n: round(float(v), 4) for n, v in zip(FEATURE_NAMES, np.median(x, 0), strict=True)
            },
            "model": self.model.meta.get("trained_on", ""),
        }
        return DetectorResult(
            detector=self.name,
            score=score,
            kind=self.kind,
            summary=summary,
            evidence=evidence,
            details=details,
            timeline=timeline,
            timeline_times_s=timeline_times,
        )

    def _evidence(
        self,
        x: np.ndarray,
        own: np.ndarray,
        keys: list[int],
        timeline: list[float],
        indices: dict[int, list[int]],
        times: dict[int, float],
    ) -> list[str]:
        """Sentences naming the most abnormal measurements and where they occur."""
        ref = self.model.meta.get("reference_real", {})
        edges = np.asarray(ref.get("motion_bin_edges", []), dtype=np.float64)
        medians: dict[str, list[float]] = ref.get("median", {})
        out: list[str] = []
        flagged = [k for k, p in zip(keys, timeline, strict=True) if p >= FLAG_P]
        # Runs of consecutive flagged timeline entries -> one sentence each (top 3).
        runs: list[list[int]] = []
        for k in flagged:
            if runs and keys.index(k) == keys.index(runs[-1][-1]) + 1:
                runs[-1].append(k)
            else:
                runs.append([k])
        runs.sort(key=lambda r: -max(timeline[keys.index(k)] for k in r))
        for run in runs[:3]:
            sel = np.isin(own, run)
            sub = x[sel]
            motion_bin = int(np.digitize(float(np.median(sub[:, 0])), edges)) if len(edges) else 0
            best: tuple[float, str] | None = None
            for feat, label in _EVIDENCE_FEATURES.items():
                if feat not in medians:
                    continue
                typical = medians[feat][motion_bin]
                value = float(np.median(sub[:, FEATURE_NAMES.index(feat)]))
                ratio = value / typical if typical > 1e-6 else 0.0
                if best is None or ratio > best[0]:
                    best = (ratio, label)
            first, last = indices[run[0]][0], indices[run[-1]][-1]
            p = max(timeline[keys.index(k)] for k in run)
            where = f"frames {first}-{last} ({times[run[0]]:.1f}-{times[run[-1]]:.1f} s)"
            if best is not None and best[0] >= 1.5:
                out.append(
                    f"{best[1]} {best[0]:.1f}x higher than typical camera footage with "
                    f"similar motion in {where} (p_AI up to {p:.2f})"
                )
            else:
                out.append(f"motion/texture statistics atypical of camera footage in {where} "
                           f"(p_AI up to {p:.2f})")
        if not out:
            out.append(
                f"no frame pair group exceeds p_AI {FLAG_P:.1f}; highest is "
                f"{max(timeline):.2f} over {len(timeline)} sampled times"
            )
        return out
