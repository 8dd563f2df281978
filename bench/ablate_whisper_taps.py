"""Which Whisper encoder taps carry synthetic-speech evidence across sources: a linear
probe on chosen column groups of cached Whisper statistics, out of fold on the training
manifests' 4 source folds, and trained on all of them then judged on held-out sources.

    PYTHONPATH=src python bench/ablate_whisper_taps.py --media-root var/corpus \\
        --train <manifests...> --heldout data/manifests/speech-heldout-4.tsv \\
        --blocks 4 [--subsets all taps0-2 mean ...]

Reads the whole-encoder (``--blocks 4``) statistics cached by ``bench/eval_speech_encoder.py
--features whisper --whisper-blocks 4`` (computed here when missing), original condition.
Column groups: tap t = stem (0), block 1..4 output (1-4), final norm (5); per tap the time
mean (384) then standard deviation (384).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache
from antifake.training.metrics import roc_auc
from antifake.training.probe import balanced_weights, fit_probe
from antifake.training.speech_model import source_folds
from antifake.training.speech_whisper import feature_matrices
from antifake.whisper_encoder import WIDTH

SUBSETS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "all": ((0, 1, 2, 3, 4, 5), (0, 1)), "taps0-2": ((0, 1, 2), (0, 1)),
    "taps3-5": ((3, 4, 5), (0, 1)), "mean": ((0, 1, 2, 3, 4, 5), (0,)),
    "std": ((0, 1, 2, 3, 4, 5), (1,)), "taps2-4": ((2, 3, 4), (0, 1)),
    "tap5": ((5,), (0, 1)), "tap0": ((0,), (0, 1)), "tap1": ((1,), (0, 1)),
    "taps0-1": ((0, 1), (0, 1)), "taps1-2": ((1, 2), (0, 1)),
}


def columns(taps: tuple[int, ...], stats: tuple[int, ...]) -> np.ndarray:
    return np.array([t * 2 * WIDTH + s * WIDTH + k for t in taps for s in stats
                     for k in range(WIDTH)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--train", type=Path, nargs="+", required=True)
    ap.add_argument("--heldout", type=Path, nargs="+", required=True)
    ap.add_argument("--cache-dir", type=Path, default=Path("var/cache"))
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--subsets", nargs="+", default=list(SUBSETS), choices=list(SUBSETS))
    args = ap.parse_args()

    def load(manifests: list[Path]) -> tuple[list, np.ndarray]:
        items = load_audio_items(manifests, args.media_root)
        kept, waves = load_wave_cache(build_wave_cache(items, args.cache_dir / "speech-waves"))
        by_path = {str(it.path): it for it in items}
        x = feature_matrices(kept, {"original": waves["original"]}, args.cache_dir,
                             args.blocks)["original"]
        return [by_path[k] for k in kept], x

    tr, xtr = load(args.train)
    ho, xho = load(args.heldout)
    ytr = np.array([i.is_ai for i in tr])
    yho = np.array([i.is_ai for i in ho])
    src = [i.source for i in tr]
    print(f"train {len(tr)} files / {len(set(src))} sources; held out {len(ho)} files / "
          f"{len({i.source for i in ho})} sources; L2 {args.l2}")
    print("| taps | out-of-fold AUC | held-out AUC |\n|---|---|---|")
    for name in args.subsets:
        cols = columns(*SUBSETS[name])
        oof = np.zeros(len(tr))
        for held in source_folds(tr, 4):
            hs = set(held)
            rows = [i for i in range(len(tr)) if i not in hs]
            w = balanced_weights([str(v) for v in ytr[rows]], [src[i] for i in rows])
            probe = fit_probe(xtr[rows][:, cols], ytr[rows].astype(int), w, l2=args.l2)
            oof[held] = probe.logits(xtr[held][:, cols])[:, 0]
        w = balanced_weights([str(v) for v in ytr], src)
        probe = fit_probe(xtr[:, cols], ytr.astype(int), w, l2=args.l2)
        held_out = probe.logits(xho[:, cols])[:, 0]
        print(f"| {name} | {roc_auc(ytr.astype(int), oof):.3f} | "
              f"{roc_auc(yho.astype(int), held_out):.3f} |", flush=True)


if __name__ == "__main__":
    main()
