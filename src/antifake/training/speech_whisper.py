"""Second opinions for ``synthetic_speech``: a linear probe on frozen Whisper encoder
statistics (:mod:`antifake.whisper_encoder`) and a small temporal head on the encoder's
frames (:mod:`antifake.training.speech_whisper_head`), fused with the speech CNN's clip
logit.

Why: the CNN is trained from scratch on a few thousand clips and plateaus near 0.84-0.88
AUC on held-out sources whatever its capacity or augmentation (docs/benchmarks.md);
Whisper's encoder heard 680,000 hours of real speech, so what it finds unusual carries
further. The probe sees the first :data:`~antifake.whisper_encoder.MAX_SECONDS` of a clip.

Everything is fitted on held-out-source scores, as the CNN's threshold is:

1. Whisper features of every file under the chosen codec conditions (cached per condition
   and file list: about 0.1 s a file on 2 cores).
2. Out-of-fold probe logits on the same source-grouped folds as the CNN.
3. The fusion ``a * cnn + b * probe + c * head + d``: a class- and source-balanced
   logistic regression (the project's L-BFGS probe, :mod:`antifake.training.probe`) on
   the out-of-fold logits of every condition (the head's out-of-fold logits likewise).
4. The threshold: the strictest per-condition 95th percentile of the fused out-of-fold real
   speech scores (:func:`antifake.training.speech_model.operating_threshold`).
5. The final probe on every file, exported as raw weights (``x @ w + b``) in
   :data:`PROBE_FILE`, and the final head as ONNX.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from antifake.training.audio import AudioItem
from antifake.training.metrics import sigmoid
from antifake.training.probe import LinearProbe, balanced_weights, fit_probe

log = logging.getLogger(__name__)

PROBE_FILE = "synthetic_speech_whisper.npz"
DEFAULT_L2 = 0.3  # of 0.3 / 1 / 3: out-of-fold AUC 0.873 / 0.864 / 0.849
# The stem and the first two of the four blocks: on held-out sources they separate better
# than all six taps (AUC 0.865 vs 0.863 out of fold, 0.818 vs 0.808 on speech-heldout-4)
# at about half the encoder's cost; the last blocks (0.797) carry words, not the voice's
# making.
DEFAULT_N_BLOCKS = 2


def feature_matrices(kept: Sequence[str], waves: dict[str, Sequence[np.ndarray]],
                     cache_dir: Path, n_blocks: int = DEFAULT_N_BLOCKS,
                     threads: int = 2, frames_too: bool = False,
                     head_tap: int | None = None,
                     weights_file: Path | None = None) -> dict[str, np.ndarray]:
    """condition -> (n_files, n_features(n_blocks)) Whisper statistics of each wave after
    the detector's own preparation (:func:`~antifake.detectors.synthetic_speech.features.
    prepare`: silence trimmed, a fixed noise floor added, so that digital silence at the
    ends of synthetic files cannot give them away); one cache file per condition, cut and
    file list (``cache_dir/speech-whisper-b<n_blocks>p-<hash>-<condition>.npy``).

    ``frames_too``: where the statistics have to be computed, the same encoder pass also
    fills the temporal head's frame cache
    (:func:`~antifake.training.speech_whisper_head.fill_frame_cache`; of tap ``head_tap``,
    None: the last block kept) if it is missing, so training with the head runs the encoder
    once per file and condition, not twice.

    ``weights_file``: another Whisper checkpoint (CTranslate2 ``model.bin``) for
    comparisons (``bench/eval_speech_encoder.py --whisper-weights``); its caches are named
    by the file's name and size, and it fills no frame cache.
    """
    from antifake.detectors.synthetic_speech.features import prepare
    from antifake.training import speech_whisper_head as swh
    from antifake.whisper_encoder import n_features, tap_statistics, taps_of

    key = hashlib.sha1("\n".join(kept).encode()).hexdigest()[:12]
    if weights_file is None:
        model_tag, n_feats = "", n_features(n_blocks)
    else:
        from antifake.whisper_encoder import checkpoint_dims

        width, _, total = checkpoint_dims(weights_file)
        n_feats = n_features(n_blocks, width, total)
        model_tag = "-" + hashlib.sha1(
            f"{weights_file.name}:{weights_file.stat().st_size}".encode()).hexdigest()[:8]
    cache_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, np.ndarray] = {}
    t0 = time.time()
    for cond, ws in waves.items():
        path = cache_dir / f"speech-whisper{model_tag}-b{n_blocks}p-{key}-{cond}.npy"
        if path.exists():
            out[cond] = np.load(path)
            if out[cond].shape == (len(ws), n_feats):
                continue
        frames_path = swh.frames_cache_path(kept, cache_dir, n_blocks, cond, head_tap)
        keep_frames = (frames_too and weights_file is None
                       and not swh.frame_cache_holds(frames_path, len(ws)))
        rows, seqs = [], []
        for w in ws:
            taps = taps_of(prepare(w), threads=threads, n_blocks=n_blocks,
                           weights_file=weights_file)
            rows.append(tap_statistics(taps))
            if keep_frames:
                # float16: half the memory while listing
                seqs.append(taps[swh.tap_index(head_tap, n_blocks)].astype(np.float16))
        out[cond] = np.stack(rows).astype(np.float32)
        np.save(path, out[cond])
        if keep_frames:
            swh.save_frames(frames_path, swh.Sequences.of(seqs))
        log.info("whisper features, %s: %d files, %.0f s so far", cond, len(ws),
                 time.time() - t0)
    return out


def _fit(items: Sequence[AudioItem], feats: dict[str, np.ndarray], rows: Sequence[int],
         l2: float) -> LinearProbe:
    """One probe on ``rows`` under every condition of ``feats`` (class and source balanced)."""
    conds = list(feats)
    x = np.concatenate([feats[c][list(rows)] for c in conds])
    y = np.array([items[i].is_ai for i in rows] * len(conds), dtype=int)
    w = balanced_weights([str(v) for v in y], [items[i].source for i in rows] * len(conds))
    return fit_probe(x, y, w, l2=l2)


def out_of_fold_logits(items: Sequence[AudioItem], feats: dict[str, np.ndarray],
                       folds: Sequence[Sequence[int]], l2: float) -> dict[str, np.ndarray]:
    """condition -> probe logit of every item from a probe that never saw its source."""
    out = {c: np.zeros(len(items)) for c in feats}
    for held in folds:
        held_set = set(held)
        probe = _fit(items, feats, [i for i in range(len(items)) if i not in held_set], l2)
        for c in feats:
            out[c][list(held)] = probe.logits(feats[c][list(held)])[:, 0]
    return out


def fit_fusion(items: Sequence[AudioItem],
               logits: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """Weights of ``sum(w[name] * logit[name]) + w["bias"]`` from a class- and
    source-balanced logistic regression on the out-of-fold logits of every component
    (``logits``: name -> condition -> logits), pooled over the conditions all share."""
    names = list(logits)
    conds = [c for c in logits[names[0]] if all(c in logits[n] for n in names)]
    x = np.concatenate([np.stack([logits[n][c] for n in names], axis=1) for c in conds])
    y = np.array([it.is_ai for it in items] * len(conds), dtype=int)
    w = balanced_weights([str(v) for v in y], [it.source for it in items] * len(conds))
    weight, bias = fit_probe(x, y, w, l2=1e-3).raw_weights()
    out = {n: float(weight[0, k]) for k, n in enumerate(names)}
    out["bias"] = float(bias[0])
    return out


def fuse(logits: dict[str, Any], fusion: dict[str, float]) -> Any:
    """The fused clip logit of component logits (name -> value or array)."""
    return sum(fusion[n] * np.asarray(v) for n, v in logits.items()) + fusion["bias"]


def save_probe(probe: LinearProbe, path: Path, l2: float, conditions: Sequence[str],
               n_blocks: int) -> None:
    """Write the probe as raw weights (``features @ weight + bias``)."""
    w, b = probe.raw_weights()
    np.savez(path, weight=w[0].astype(np.float32), bias=np.float32(b[0]),
             l2=np.float32(l2), conditions=np.array(list(conditions)),
             n_blocks=np.int32(n_blocks))


def whisper_stage(items: Sequence[AudioItem], kept: Sequence[str],
                  waves: dict[str, Sequence[np.ndarray]], cnn_oof: dict[str, np.ndarray],
                  folds: Sequence[Sequence[int]], cache_dir: Path, l2: float = DEFAULT_L2,
                  conditions: Sequence[str] | None = None,
                  out_dir: Path | None = None,
                  n_blocks: int = DEFAULT_N_BLOCKS, head: bool = True,
                  head_cfg: Any = None, free_waves: bool = False) -> dict[str, Any]:
    """Out-of-fold Whisper probe (and, with ``head``, the temporal head of
    :mod:`antifake.training.speech_whisper_head`), their fusion with the CNN's out-of-fold
    logits and the fused threshold; with ``out_dir``, the final probe (:data:`PROBE_FILE`)
    and head are written there.

    Returns ``component_oof`` (name -> condition -> held-out logits), ``fused_oof``
    (condition -> held-out logits; the fusion of each fold fitted on the other folds),
    ``fusion`` (name -> weight, and ``bias``; fitted on all of them), ``threshold`` and
    ``authentic_threshold`` (fused probabilities), ``conditions`` and ``n_blocks``.

    ``free_waves``: once the encoder's features and frames are cached, empty ``waves`` (the
    caller's dict), so that their memory is given back before the frames of every condition
    are loaded for the head; for a caller that needs the waves no more (on the ~7,000 files
    of the shipped model the waves of five conditions hold 13-14 GB).
    """
    from antifake.training import speech_whisper_head as swh
    from antifake.training.speech_model import authentic_threshold, operating_threshold

    conds = [c for c in (conditions or list(waves)) if c in waves and c in cnn_oof]
    if not conds:
        raise ValueError("no codec condition has both waves and CNN held-out scores")
    # resolved once: the frames cached, the heads trained and the tap the caller records
    # must all be the same recipe's
    head_cfg = head_cfg or swh.HeadConfig()
    head_tap = head_cfg.tap
    feats = feature_matrices(kept, {c: waves[c] for c in conds}, cache_dir, n_blocks,
                             frames_too=head, head_tap=head_tap)
    comps: dict[str, dict[str, np.ndarray]] = {
        "cnn": {c: np.asarray(cnn_oof[c], np.float64) for c in conds},
        "whisper_probe": out_of_fold_logits(items, feats, folds, l2)}
    frames = None
    if head:
        swh.fill_frame_cache(kept, {c: waves[c] for c in conds}, cache_dir, n_blocks,
                             tap=head_tap)
    if free_waves:
        from antifake.allocator import release_free_memory

        waves.clear()
        release_free_memory()  # the waves were heap arrays: hand their pages back now
    if head:
        frames = swh.load_frame_cache(kept, conds, cache_dir, n_blocks, head_tap)
        comps["whisper_head"] = swh.cached_out_of_fold_logits(
            items, kept, frames, folds, cache_dir, n_blocks, head_cfg)
    fusion = fit_fusion(items, comps)
    # Judged scores: each fold fused with weights fitted on the other folds only, so that
    # not even the fusion weights saw the source being scored.
    fused = {c: np.zeros(len(items)) for c in conds}
    for held in folds:
        held_set = set(held)
        rest = [i for i in range(len(items)) if i not in held_set]
        f_rest = fit_fusion([items[i] for i in rest],
                            {n: {c: v[rest] for c, v in d.items()} for n, d in comps.items()})
        for c in conds:
            fused[c][list(held)] = fuse({n: d[c][list(held)] for n, d in comps.items()},
                                        f_rest)
    y = np.array([it.is_ai for it in items])
    result: dict[str, Any] = {
        "conditions": conds, "l2": l2, "n_blocks": n_blocks, "fusion": fusion,
        "component_oof": comps, "fused_oof": fused,
        "threshold": operating_threshold({c: sigmoid(v)[~y] for c, v in fused.items()}),
        "authentic_threshold": authentic_threshold({c: sigmoid(v)[y]
                                                    for c, v in fused.items()}),
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_probe(_fit(items, feats, range(len(items)), l2), out_dir / PROBE_FILE, l2, conds,
                   n_blocks)
        if frames is not None:
            swh.export_head(swh.train_head(items, frames, range(len(items)), head_cfg),
                            out_dir / swh.HEAD_FILE)
    return result
