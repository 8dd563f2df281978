"""Whisper-encoder probe trained on every file of the training manifests, judged on
sources in none of them (e.g. ``data/manifests/speech-heldout-4.tsv``), beside the shipped
speech CNN on the same files; original condition.

    PYTHONPATH=src python bench/eval_speech_whisper_heldout.py --media-root var/corpus \
        --train <manifests...> --heldout data/manifests/speech-heldout-4.tsv \
        --oof-json var/whisper-orig.json

The probe's line is the 95th percentile of its out-of-fold real-speech scores on the
training sources (``--oof-json``: ``bench/eval_speech_encoder.py --features whisper
--json-out``), so nothing about the held-out sources sets it. The fused row (z-scored
logits, equal weights, z-statistics from the held-out scores themselves: a monotone
rescale per model) is reported as AUC only.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache
from antifake.training.metrics import roc_auc
from antifake.training.probe import balanced_weights, fit_probe


def rates(scores: np.ndarray, y: np.ndarray, line: float) -> str:
    tpr = float((scores[y] >= line).mean())
    fpr = float((scores[~y] >= line).mean())
    return f"AUC {roc_auc(y, scores):.3f} / TPR {tpr:.3f} / real FPR {100 * fpr:.1f} %"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--train", type=Path, nargs="+", required=True)
    ap.add_argument("--heldout", type=Path, nargs="+", required=True)
    ap.add_argument("--oof-json", type=Path, required=True)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--cache-dir", type=Path, default=Path("var/cache"))
    ap.add_argument("--whisper-blocks", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def load(manifests: list[Path]) -> tuple[list, np.ndarray, list[np.ndarray], list[str]]:
        items = load_audio_items(manifests, args.media_root)
        kept, waves = load_wave_cache(build_wave_cache(items, args.cache_dir / "speech-waves"))
        by_path = {str(it.path): it for it in items}
        items = [by_path[k] for k in kept]
        return items, np.array([it.is_ai for it in items]), waves["original"], kept

    tr_items, ytr, tr_waves, tr_kept = load(args.train)
    ho_items, yho, ho_waves, ho_kept = load(args.heldout)
    from antifake.training.speech_whisper import feature_matrices

    xtr = feature_matrices(tr_kept, {"original": tr_waves}, args.cache_dir,
                           args.whisper_blocks)["original"]
    xho = feature_matrices(ho_kept, {"original": ho_waves}, args.cache_dir,
                           args.whisper_blocks)["original"]
    w = balanced_weights([str(v) for v in ytr], [it.source for it in tr_items])
    probe = fit_probe(xtr, ytr.astype(int), w, l2=args.l2)
    whisper_logit = probe.logits(xho)[:, 0]
    oof = json.loads(args.oof_json.read_text())[f"encoder_l2_{args.l2}"]
    line_logit = float(oof["line_logit"]) if "line_logit" in oof else None

    from antifake.detectors.synthetic_speech.detector import load_config, score_wave

    cnn_logit = np.array([float(score_wave(wv)[1].mean()) for wv in ho_waves])
    cnn_line = float(np.log(load_config()["ai_threshold"] / (1 - load_config()["ai_threshold"])))
    print(f"held-out: {len(ho_items)} files, {len({i.source for i in ho_items})} sources, "
          f"{int(yho.sum())} synthetic")
    print("shipped CNN at its line:", rates(cnn_logit, yho, cnn_line))
    if line_logit is not None:
        print(f"whisper probe (L2 {args.l2}) at its OOF line:",
              rates(whisper_logit, yho, line_logit))
    else:
        print(f"whisper probe (L2 {args.l2}): AUC {roc_auc(yho, whisper_logit):.3f}")
    z = ((cnn_logit - cnn_logit.mean()) / cnn_logit.std()
         + (whisper_logit - whisper_logit.mean()) / whisper_logit.std())
    print(f"fused, equal weights: AUC {roc_auc(yho, z):.3f}")
    for src in sorted({i.source for i in ho_items}):
        m = np.array([i.source == src for i in ho_items])
        ai = m & yho
        print(f"  {src}: {int(m.sum())} files, synthetic {int(ai.sum())}: "
              f"CNN caught {int((cnn_logit[ai] >= cnn_line).sum())}, real flagged "
              f"{int((cnn_logit[m & ~yho] >= cnn_line).sum())}"
              + ("" if line_logit is None else
                 f"; whisper caught {int((whisper_logit[ai] >= line_logit).sum())}, real "
                 f"flagged {int((whisper_logit[m & ~yho] >= line_logit).sum())}"))


if __name__ == "__main__":
    main()
