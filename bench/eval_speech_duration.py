"""Does the synthetic-speech score depend on how much sound a clip has, and would a line
per clip length help?

Two parts:

1. Rates by sound length (seconds left after trimming end silences, per codec condition,
   as the wave cache holds it: at most ``MAX_SECONDS``) at the shipped threshold, out of
   fold (``--oof-json``, the ``--json-out`` of ``antifake evaluate`` on the shipped model's
   manifests) and on never-seen sources (``--unseen`` manifests, scored by the shipped
   model).
2. A two-line rule: clips with at least ``cut`` seconds of sound get their own line, the
   shorter ones theirs, each fitted like the shipped one (strictest per-condition 95th
   percentile of out-of-fold real speech). Out of fold it is judged nested (the lines
   fitted without the judged file's source); on the never-seen sources with the lines
   fitted on every out-of-fold source.

With ``--fills`` it also scores the never-seen clips shorter than one window with other
ways of filling the window than repeating the clip (mirrored repeats, repeats joined by
30 ms cross-fades, padding with the noise floor): is the repeat seam what makes short real
clips look synthetic?

Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_speech_duration.py --media-root var/corpus \\
        --oof-json var/speech-eval-09.json --oof-manifests $M \\
        --unseen data/manifests/speech-heldout-4.tsv data/manifests/speech-*-7.tsv \\
        data/manifests/speech-*-8.tsv [--fills]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from antifake.detectors.synthetic_speech import features as F
from antifake.detectors.synthetic_speech.detector import _sessions, load_config
from antifake.training.audio import (
    MAX_SECONDS,
    build_wave_cache,
    load_audio_items,
    load_wave_cache,
)
from antifake.training.metrics import roc_auc, sigmoid
from antifake.training.speech_model import operating_threshold

sys.path.insert(0, str(Path(__file__).parent))
from eval_speech_added import clip_probabilities  # noqa: E402

EDGES = (0.0, 2.0, 4.0, 8.0, MAX_SECONDS - 0.1, float("inf"))
CUTS = (4.0, 6.0, 8.0, 10.0, MAX_SECONDS - 0.1)


def cached_seconds(kept: list[str], cache: Path, conditions: list[str]) -> dict[str, np.ndarray]:
    """Sound seconds of every cached file in every condition (one file read at a time)."""
    indexes = (json.loads(p.read_text()) for p in sorted(cache.glob("items-*.json")))
    index = next(ix for ix in indexes if ix["kept"] == kept)
    out: dict[str, list[float]] = {c: [] for c in conditions}
    for key in index["keys"]:
        with np.load(cache / "files" / f"{key}.npz") as z:
            for c in conditions:
                out[c].append(z[c].shape[0] / F.SAMPLE_RATE)
    return {c: np.array(v) for c, v in out.items()}


def by_length(label: str, y: np.ndarray, probs: dict[str, np.ndarray],
              secs: dict[str, np.ndarray], thr: float) -> None:
    print(f"\n{label}: real flagged / synthetic caught at {thr:.3f}, by seconds of sound")
    print("\n| condition | seconds | real | real FPR | synthetic | TPR | AUC |"
          "\n|---|---|---|---|---|---|---|")
    for c, p in probs.items():
        for a, b in zip(EDGES[:-1], EDGES[1:], strict=True):
            m = (secs[c] >= a) & (secs[c] < b)
            r, s = m & ~y, m & y
            auc = roc_auc(y[m], p[m]) if r.any() and s.any() else float("nan")
            span = f"{a:g}-{b:g}" if b != float("inf") else f">= {a:g}"
            fpr = f"{100 * (p[r] >= thr).mean():.1f} %" if r.any() else "-"
            tpr = f"{(p[s] >= thr).mean():.3f}" if s.any() else "-"
            print(f"| {c} | {span} | {int(r.sum())} | {fpr} | {int(s.sum())} | {tpr} "
                  f"| {'-' if auc != auc else f'{auc:.3f}'} |")


def two_lines(y: np.ndarray, src: np.ndarray, probs: dict[str, np.ndarray],
              secs: dict[str, np.ndarray], cut: float, exclude: str | None = None
              ) -> tuple[float, float]:
    keep = src != exclude if exclude is not None else np.ones_like(y)
    return (operating_threshold({c: p[~y & keep & (secs[c] < cut)] for c, p in probs.items()}),
            operating_threshold({c: p[~y & keep & (secs[c] >= cut)] for c, p in probs.items()}))


def rule_table(y: np.ndarray, src: np.ndarray, probs: dict[str, np.ndarray],
               secs: dict[str, np.ndarray], uy: np.ndarray, uprobs: dict[str, np.ndarray],
               usecs: dict[str, np.ndarray], thr: float) -> None:
    print("\nTwo lines by sound length vs the one shipped line (TPR / real FPR):")
    print("\n| cut (s) | lines short / long | condition | out of fold, one line | out of fold, "
          "two lines (nested) | never-seen, one line | never-seen, two lines |"
          "\n|---|---|---|---|---|---|---|")
    sources = sorted(set(src))
    for cut in CUTS:
        short, long_ = two_lines(y, src, probs, secs, cut)
        nested = {s: two_lines(y, src, probs, secs, cut, exclude=s) for s in sources}
        for c, p in probs.items():
            t_n = np.array([nested[s][int(d >= cut)] for s, d in zip(src, secs[c], strict=True)])
            t_u = np.where(usecs[c] >= cut, long_, short)
            up = uprobs[c]
            one, one_u = np.full(len(y), thr), np.full(len(uy), thr)
            cells = [f"{(q[yy] >= t[yy]).mean():.3f} / {100 * (q[~yy] >= t[~yy]).mean():.1f} %"
                     for q, yy, t in ((p, y, one), (p, y, t_n), (up, uy, one_u), (up, uy, t_u))]
            print(f"| {cut:g} | {short:.3f} / {long_:.3f} | {c} | " + " | ".join(cells) + " |")


def fill_tile(w: np.ndarray) -> np.ndarray:
    return F.fill_window(w)


def fill_mirror(w: np.ndarray) -> np.ndarray:
    parts: list[np.ndarray] = []
    n = 0
    while n < F.WINDOW_SAMPLES:
        parts.append(w if len(parts) % 2 == 0 else w[::-1])
        n += w.size
    return np.concatenate(parts)[:F.WINDOW_SAMPLES]


def fill_crossfade(w: np.ndarray, ms: float = 30.0) -> np.ndarray:
    k = min(int(F.SAMPLE_RATE * ms / 1000), w.size // 4)
    if k < 2:
        return F.fill_window(w)
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))).astype(np.float32)
    out = w.copy()
    while out.size < F.WINDOW_SAMPLES:
        joint = w[:k] * ramp + out[-k:] * ramp[::-1]
        out = np.concatenate([out[:-k], joint, w[k:]])
    return out[:F.WINDOW_SAMPLES]


def fill_floor(w: np.ndarray) -> np.ndarray:
    out = np.zeros(F.WINDOW_SAMPLES, np.float32)
    out[:w.size] = w
    return F.add_noise_floor(out)


FILLS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "repeat (shipped)": fill_tile, "mirrored repeats": fill_mirror,
    "30 ms cross-fades": fill_crossfade, "noise-floor padding": fill_floor}


def fills_table(manifests: list[Path], media_root: Path, cache: Path) -> None:
    cfg = load_config()
    thr = float(cfg["ai_threshold"])
    line = float(np.log(thr / (1.0 - thr)))  # the line on window logits
    n_bands, per_band = int(cfg.get("n_bands", F.N_BANDS)), bool(cfg.get("per_band_norm"))
    session = _sessions.get(2)
    items = load_audio_items(manifests, media_root)
    kept, waves = load_wave_cache(build_wave_cache(items, cache))
    by_path = {str(it.path): it for it in items}
    y_all = np.array([by_path[k].is_ai for k in kept])
    print("\nNever-seen clips shorter than one window, scored with other window fills:")
    print("\n| condition | fill | real | synthetic | AUC | real flagged | TPR |\n"
          "|---|---|---|---|---|---|---|")
    for c in ("original", "opus_32k", "band8k"):
        prepared = [F.prepare(w.astype(np.float32)) for w in waves[c]]
        short = np.array([p.size <= F.WINDOW_SAMPLES for p in prepared])
        y = y_all[short]
        for name, fill in FILLS.items():
            feats = np.stack([F.window_features(fill(p), n_bands, per_band)
                              for p, s in zip(prepared, short, strict=True) if s])
            (lo, _) = session.run(None, {"windows": feats[:, None].astype(np.float32)})
            lo = np.asarray(lo).reshape(-1)
            print(f"| {c} | {name} | {int((~y).sum())} | {int(y.sum())} "
                  f"| {roc_auc(y, lo):.3f} | {int((lo[~y] >= line).sum())} "
                  f"| {(lo[y] >= line).mean():.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--oof-json", type=Path, required=True)
    ap.add_argument("--oof-manifests", type=Path, nargs="+", required=True)
    ap.add_argument("--unseen", type=Path, nargs="+", required=True)
    ap.add_argument("--cache", type=Path, default=Path("var/cache/speech-waves"))
    ap.add_argument("--fills", action="store_true")
    args = ap.parse_args()

    run = json.loads(args.oof_json.read_text())
    thr = float(load_config()["ai_threshold"])
    by_path = {str(it.path): it for it in load_audio_items(args.oof_manifests, args.media_root)}
    items = [by_path[k] for k in run["files"]]
    y = np.array([it.is_ai for it in items])
    src = np.array([it.source for it in items])
    probs = {c: sigmoid(np.asarray(v)) for c, v in run["oof"].items()}
    secs = cached_seconds(run["files"], args.cache, list(probs))
    by_length(f"out of fold ({args.oof_json}, {len(set(src))} sources)", y, probs, secs, thr)

    uitems, uprobs = clip_probabilities(args.unseen, args.media_root, args.cache)
    uy = np.array([it.is_ai for it in uitems])
    usecs = cached_seconds([str(it.path) for it in uitems], args.cache, list(uprobs))
    by_length(f"never seen ({len({it.source for it in uitems})} sources)", uy, uprobs, usecs,
              thr)
    rule_table(y, src, probs, secs, uy, uprobs, usecs, thr)
    if args.fills:
        fills_table(args.unseen, args.media_root, args.cache)


if __name__ == "__main__":
    main()
