"""Ablation of the forensic probe's settings, leave one source out, from cached features.

Every configuration is scored the way ``antifake evaluate`` scores the shipped one: for each
source repository a probe is fitted on the other sources (training conditions as shipped)
and scores the held-out files under ``--condition`` (default laundered+masked). Reported
per configuration: AUC of all AI video vs real video, Runway Gen-2 and Gen-1 vs real video,
AI image vs real image, and the same video AUCs after fusing with the ``temporal``
detector's own out-of-fold scores in two ways: ``nested`` - logit(forensic) + r *
logit(temporal) with the ratio r of a logistic fusion fitted without the held-out source
(so, unlike the in-sample fit in calibration.json, never optimistic; the intercept is left
out because it only moves the operating threshold); ``sum`` - r = 1, no fitted parameter
(plain log-odds evidence fusion).

Needs the feature cache of ``antifake train``/``evaluate`` (``var/features``) and the joined
out-of-fold table of ``python -m antifake.training.joint_calibration``
(``var/forensic_train/oof_scores_joint.tsv``) for the temporal scores. A configuration is
``FAMILIES@L2[/f8]``: feature families joined with ``+`` (``mnv2e``, ``mnv2_low``,
``mnv2:16``..., or ``cache:NAME`` for features some other script precomputed into
``var/features/v1/NAME/<condition>_f<frames>/<tag>.npy`` with the same file tags), the
probe's L2 weight, and ``/f8`` to use 8 frames per laundered video (train and test)
instead of 2, when that cache exists.

    PYTHONPATH=src python bench/ablate_forensic_probe.py --corpus ../shared/corpus \\
        mnv2e@0.1 mnv2e@0.3 mnv2e+mnv2:16@0.1 mnv2e@0.1/f8
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from antifake.training import pipeline as P
from antifake.training.data import Item, load_manifest
from antifake.training.features import FeatureExtractor
from antifake.training.metrics import roc_auc


class JoinedFeatures:
    """Concatenated per-frame features of several families (optionally 8-frame videos)."""

    def __init__(self, cache: Path, families: Sequence[str], f8_condition: str | None) -> None:
        self.families = list(families)
        self.fx2 = FeatureExtractor(cache, max_frames=2)
        self.fx8 = FeatureExtractor(cache, max_frames=8)
        self.f8_condition = f8_condition

    def frames_features(self, family: str, condition: str, item: Item) -> np.ndarray:
        fx = (self.fx8 if condition == self.f8_condition and item.media_type == "video"
              else self.fx2)
        parts = []
        for f in self.families:
            if f.startswith("cache:"):
                # Same layout and tag as FeatureExtractor's own cache.
                path = fx._path(f[len("cache:"):], condition, item)
                parts.append(np.load(path))
            else:
                parts.append(fx.frames_features(f, condition, item))
        return np.concatenate(parts, axis=1)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.01) -> np.ndarray:
    """Newton's method for a small L2-regularised logistic regression (bias in column 0)."""
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        w -= np.linalg.solve(hess, grad)
    return w


def nested_fusion(z: np.ndarray, t: np.ndarray, y: np.ndarray,
                  sources: np.ndarray) -> np.ndarray:
    """``z + r * logit(t)`` per file, ``r`` from a fusion fitted without the file's source."""
    ok = np.isfinite(z) & np.isfinite(t)
    out = np.full(len(z), np.nan)
    x = np.c_[np.ones(len(z)), z, _logit(t)]
    for src in set(sources[ok]):
        test = ok & (sources == src)
        train = ok & (sources != src)
        if len(set(y[train])) < 2:
            continue
        w = _fit_logistic(x[train], y[train].astype(float))
        out[test] = z[test] + (w[2] / w[1]) * x[test, 2]
    return out


def evaluate(items: list[Item], cache: Path, spec: str, condition: str,
             temporal: dict[tuple[str, str], float]) -> dict[str, float]:
    fams_l2, _, frames = spec.partition("/")
    fams, _, l2 = fams_l2.partition("@")
    P.set_l2(float(l2) if l2 else None)
    fx = JoinedFeatures(cache, fams.split("+"), condition if frames == "f8" else None)
    classes = P.attribution_classes(items)
    z = np.full(len(items), np.nan)
    index = {id(it): i for i, it in enumerate(items)}
    for sp in P.split_iter(items, "leave-one-source-out"):
        if len({it.is_ai for it in sp.train}) < 2:
            continue
        model = P.fit_model(fx, fams, sp.train, classes=classes)  # type: ignore[arg-type]
        for it in sp.test:
            z[index[id(it)]] = model.clip_logit(fx.frames_features(fams, condition, it))
    ai = np.asarray([it.is_ai for it in items])
    video = np.asarray([it.media_type == "video" for it in items])
    label = np.asarray([it.label for it in items])
    sources = np.asarray([it.source for it in items])
    t = np.asarray([temporal.get((str(it.path), condition), math.nan) for it in items])
    fused = nested_fusion(np.where(video, z, np.nan), t, ai, sources)
    summed = np.where(video, z, np.nan) + _logit(t)

    def auc(sel: np.ndarray, s: np.ndarray) -> float:
        sel = sel & np.isfinite(s)
        return roc_auc(ai[sel].astype(int), s[sel])

    gen2 = video & ((label == "runway_gen2") | ~ai)
    gen1 = video & ((label == "runway_gen1") | ~ai)
    return {"all_video": auc(video, z), "gen2": auc(gen2, z), "gen1": auc(gen1, z),
            "ai_image": auc(~video, z), "nested_all_video": auc(video, fused),
            "nested_gen2": auc(gen2, fused), "sum_all_video": auc(video, summed),
            "sum_gen2": auc(gen2, summed)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", nargs="+", help="FAMILIES@L2[/f8], e.g. mnv2e@0.1")
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--cache", type=Path, default=Path("var"))
    ap.add_argument("--joint", type=Path, default=Path("var/forensic_train/oof_scores_joint.tsv"))
    ap.add_argument("--condition", default="laundered+masked")
    args = ap.parse_args(argv)
    # Absolute paths: the feature cache and the joined table are keyed by them.
    items = load_manifest(args.corpus.resolve() / "manifest.tsv")
    temporal: dict[tuple[str, str], float] = {}
    with args.joint.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row.get("temporal"):
                temporal[(row["file"], row["condition"])] = float(row["temporal"])
    cols = ["all_video", "gen2", "gen1", "ai_image", "nested_all_video", "nested_gen2",
            "sum_all_video", "sum_gen2"]
    print(f"condition {args.condition}, leave one source out ({len(items)} files)\n")
    print("| config | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for spec in args.configs:
        r = evaluate(items, args.cache, spec, args.condition, temporal)
        print(f"| `{spec}` | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
