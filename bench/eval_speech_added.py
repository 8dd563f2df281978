"""What added speech sources say about the synthetic-speech model, before and after.

*Before*: the shipped ``synthetic_speech`` model (trained on every file of the shared audio
manifest) scores the files of ``--added`` manifests, whose sources it never saw, under the
five codec conditions, at its shipped threshold: AUC, TPR, real FPR per condition, and per
added source. *After* (``--after-json``, the ``--json-out`` of ``antifake evaluate
<base manifests> <added manifests> ...``): the same source-grouped folds run over base and
added files together, split into the base sources and the added ones, so one sees whether
training with the added sources moves the base numbers and how the added sources fare when
the other added sources are in training.

Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_speech_added.py --media-root var/corpus \\
        --added data/manifests/speech-*.tsv \\
        [--after-json var/speech-eval-added.json --base ../shared/corpus/extra-audio-manifest.tsv]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from antifake.detectors.synthetic_speech.detector import (
    fused_clip_logit,
    load_config,
    score_wave,
)
from antifake.training.audio import (
    AudioItem,
    build_wave_cache,
    load_audio_items,
    load_wave_cache,
)
from antifake.training.metrics import roc_auc, sigmoid
from antifake.training.speech_model import nested_source_thresholds


def rates(y: np.ndarray, p: np.ndarray, thr: float) -> str:
    auc = roc_auc(y, p) if y.any() and (~y).any() else float("nan")
    tpr = float((p[y] >= thr).mean()) if y.any() else float("nan")
    fpr = float((p[~y] >= thr).mean()) if (~y).any() else float("nan")
    return f"{auc:.3f} / {tpr:.3f} / {100 * fpr:.1f} %"


def clip_probabilities(manifests: list[Path], media_root: Path, cache: Path,
                       threads: int = 2) -> tuple[list[AudioItem], dict[str, np.ndarray]]:
    """The speech files of ``manifests`` that decode, and the selected model's clip
    probability of each in every cached codec condition (as the detector computes it)."""
    items = load_audio_items(manifests, media_root)
    kept, waves = load_wave_cache(build_wave_cache(items, cache))
    by_path = {str(it.path): it for it in items}
    items = [by_path[k] for k in kept]
    probs = {c: np.array([float(sigmoid(fused_clip_logit(
        float(np.mean(score_wave(w, threads=threads)[1])), w, threads=threads)[0]))
        for w in ws]) for c, ws in waves.items()}
    return items, probs


def before(manifests: list[Path], media_root: Path, cache: Path) -> None:
    items, probs = clip_probabilities(manifests, media_root, cache)
    thr = float(load_config()["ai_threshold"])
    y = np.array([it.is_ai for it in items])
    src = np.array([it.source for it in items])
    print(f"shipped {load_config().get('version')} (threshold {thr:.3f}) on {len(items)} "
          f"added files from {len(set(src))} sources ({int(y.sum())} synthetic from "
          f"{len(set(src[y]))} sources, {int((~y).sum())} real from {len(set(src[~y]))})")
    print("\n| condition | AUC / TPR / real FPR |\n|---|---|")
    for c, p in probs.items():
        print(f"| {c} | {rates(y, p, thr)} |")
    print("\n| added source | real files | real flagged (original) | synthetic files "
          "| synthetic caught (original) | AUC (original) |\n|---|---|---|---|---|---|")
    p = probs["original"]
    for s in sorted(set(src)):
        m = src == s
        yr, ya = m & ~y, m & y
        auc = roc_auc(y[m], p[m]) if yr.any() and ya.any() else float("nan")
        fl = f"{int((p[yr] >= thr).sum())}" if yr.any() else "-"
        ca = f"{int((p[ya] >= thr).sum())}" if ya.any() else "-"
        print(f"| {s} | {int(yr.sum())} | {fl} | {int(ya.sum())} | {ca} | "
              f"{'-' if auc != auc else f'{auc:.3f}'} |")
    labels = np.array([it.label for it in items])
    print("\n| label | files | sources | flagged as synthetic (original) |\n|---|---|---|---|")
    for lab in sorted(set(labels), key=lambda name: (-int((labels == name).sum()), name)):
        m = labels == lab
        print(f"| {lab} | {int(m.sum())} | {len(set(src[m]))} | {int((p[m] >= thr).sum())} |")


def after(base: list[Path], added: list[Path], media_root: Path, run_json: Path) -> None:
    """Base and added sources apart, each source judged at the line fitted on every other
    source's real speech (base and added), as ``antifake evaluate`` does."""
    run = json.loads(run_json.read_text())
    items = load_audio_items(base + added, media_root)
    by_path = {str(it.path): it for it in items}
    items = [by_path[k] for k in run["files"]]
    added_sources = {it.source for it in load_audio_items(added, media_root)}
    y = np.array([it.is_ai for it in items])
    src = np.array([it.source for it in items])
    probs = {c: sigmoid(np.asarray(v)) for c, v in run["oof"].items()}
    thr_for = nested_source_thresholds(y, src, probs)
    thr = np.array([thr_for[s] for s in src])
    print(f"\nafter: {run_json} ({run['folds']} source folds over base + added; nested lines)")
    print("\n| files | sources (real / synthetic) | condition | AUC | TPR | real FPR "
          "| real sources > 5 % |\n|---|---|---|---|---|---|---|")
    is_added = np.array([s in added_sources for s in src])
    for name, m in (("base sources", ~is_added), ("added sources", is_added)):
        n_src = f"{len(set(src[m]))} ({len(set(src[m & ~y]))} / {len(set(src[m & y]))})"
        for c, p in probs.items():
            flag = p > thr
            auc = roc_auc(y[m], p[m])
            tpr, fpr = float(flag[m & y].mean()), float(flag[m & ~y].mean())
            over = sum(1 for s in set(src[m & ~y]) if flag[(src == s) & ~y].mean() > 0.05)
            print(f"| {name} | {n_src} | {c} | {auc:.3f} | {tpr:.3f} | {100 * fpr:.1f} % "
                  f"| {over} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--added", type=Path, nargs="+", required=True)
    ap.add_argument("--base", type=Path, nargs="*", default=[])
    ap.add_argument("--cache", type=Path, default=Path("var/cache/speech-waves"))
    ap.add_argument("--after-json", type=Path)
    args = ap.parse_args()
    before(args.added, args.media_root, args.cache)
    if args.after_json:
        after(args.base, args.added, args.media_root, args.after_json)


if __name__ == "__main__":
    main()
