"""Compare operating-threshold policies by what they let through on sources never seen.

Out-of-fold logits of ``forensic_image`` (effl0e), ``semantic_clip`` (clipm) and their
calibrated fusion over 10 source-grouped folds (as ``antifake evaluate --split
source-10fold``; cached in ``--oof`` after the first run), then, per policy, every source
judged with thresholds fitted on the *other* sources only (nested), and the real FPR / AI
TPR per media type, the format groups (>= 20 real files) above 5 % and the number of real
sources above 5 %. Policies: the pooled 95th percentile alone; pooled + a line per format
group at 5 / 3 / 2 % (a file judged by the strictest of the pooled line and its own groups'
lines); group lines whose level is chosen by an inner leave-one-source-out so that the
group's inner FPR stays <= 5 %; group lines at 3 / 5 % with every source weighing the same
(each real file weighted by one over its source's files in the group). Lines use the format
groups of each file as scored under ``--condition``
(:func:`antifake.training.formats.scored_format_groups`; ``--line-groups published``: the
published file's groups, the rule until 2026-12-05). Needs the feature cache filled
(``antifake evaluate``).
Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_threshold_policies.py --media-root var/corpus \\
        ../shared/corpus/manifest.tsv ../shared/corpus/extra-video-manifest.tsv \\
        ../shared/corpus/extra-image-manifest.tsv [--model fused|clipm|effl0e] \\
        [--condition laundered+masked]
"""

from __future__ import annotations

import argparse
import pickle
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from antifake.training import operating as op
from antifake.training.data import load_manifests
from antifake.training.features import FeatureExtractor
from antifake.training.formats import format_groups, scored_format_groups
from antifake.training.metrics import threshold_at_fpr
from antifake.training.pipeline import TRAIN_CONDITIONS, fuse_oof, loso_scores

CONDITIONS = ["masked", "laundered+masked"]


def weighted_threshold_at_fpr(scores: np.ndarray, weights: np.ndarray, fpr: float) -> float:
    """A threshold t such that the real files strictly above t carry at most ``fpr`` of the
    total weight (:func:`threshold_at_fpr` with weights)."""
    order = np.argsort(-scores, kind="stable")
    s, w = scores[order], weights[order] / weights.sum()
    above = np.cumsum(w)  # weight of s[0..k] inclusive
    k = int(np.searchsorted(above, fpr, side="right"))  # first k with mass(s[0..k]) > fpr
    return float(s[k]) if k < len(s) else float(s[-1]) - 1e-9


def out_of_fold(manifests: list[Path], roots: list[Path], cache: Path, oof_path: Path,
                conditions: list[str] = CONDITIONS,
                train_conditions: list[str] | None = None) -> dict:
    if oof_path.exists():
        with oof_path.open("rb") as fh:
            return pickle.load(fh)  # noqa: S301 - our own cache file
    items = load_manifests(manifests, roots).items
    fx = FeatureExtractor(cache, max_frames=4)
    oofs = {f: loso_scores(fx, f, items, conditions, train_conditions or list(TRAIN_CONDITIONS),
                           split="source-10fold", attribution=False)
            for f in ("effl0e", "clipm")}
    _, fused = fuse_oof(oofs, conditions)
    data = {"items": fused.items, "fused": fused.logits, "clipm": oofs["clipm"].logits,
            "effl0e": oofs["effl0e"].logits}
    oof_path.parent.mkdir(parents=True, exist_ok=True)
    with oof_path.open("wb") as fh:
        pickle.dump(data, fh)
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--media-root", action="append", type=Path, default=[])
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--oof", type=Path, default=None,
                    help="cache of the out-of-fold logits (default: var/policies/oof.pkl, "
                         "or oof-<train conditions>.pkl with --train-conditions)")
    ap.add_argument("--model", default="fused", choices=["fused", "clipm", "effl0e"])
    ap.add_argument("--condition", default="laundered+masked", choices=CONDITIONS)
    ap.add_argument("--train-conditions", default=None,
                    help="comma list (default: the shipped recipe's); only --condition is "
                         "then scored")
    ap.add_argument("--line-groups", default="scored", choices=["scored", "published"],
                    help="fit and apply the lines on the groups of the file as scored "
                         "(default) or of the published file (the rule before 2026-12-05)")
    args = ap.parse_args()
    tconds = args.train_conditions.split(",") if args.train_conditions else None
    # One cache file per training recipe: logits of another recipe are never read back.
    oof_path = args.oof or Path("var/policies") / (
        f"oof-{'_'.join(tconds)}.pkl" if tconds else "oof.pkl")
    d = out_of_fold(args.manifests, args.media_root, args.cache_dir, oof_path,
                    [args.condition] if tconds else CONDITIONS, tconds)
    items = d["items"]
    z = d[args.model][args.condition]
    # Lines are fitted and applied on the groups of the file as scored (a laundered GIF
    # is an MP4 to the engine); the tables still report the published format's groups.
    groups = [scored_format_groups(it.path, it.media_type, args.condition)
              if args.line_groups == "scored" else format_groups(it.path, it.media_type)
              for it in items]
    real = np.asarray([not it.is_ai for it in items]) & np.isfinite(z)
    src = np.asarray([it.source for it in items])
    media = np.asarray([it.media_type for it in items])

    def q(m: np.ndarray, fpr: float) -> float:
        return threshold_at_fpr(z[m], fpr)

    def q_sources(m: np.ndarray, fpr: float) -> float:
        """The line at ``fpr`` with every source's real files weighing as much in total as
        any other source's: one source with many low (or high) scores does not move it."""
        _, inv, counts = np.unique(src[m], return_inverse=True, return_counts=True)
        return weighted_threshold_at_fpr(z[m], 1.0 / counts[inv], fpr)

    def inner_loso(m: np.ndarray) -> float:
        for level in (0.05, 0.04, 0.03, 0.025, 0.02, 0.015, 0.01, 0.005):
            fp = 0
            for s in set(src[m]):
                fp += int((z[m[src[m] == s]] > q(m[src[m] != s], level)).sum())
            if fp / len(m) <= 0.05:
                return q(m, level)
        return q(m, 0.0)

    def group_lines(idx: np.ndarray, line: Callable[[np.ndarray], float]) -> dict[str, float]:
        members: dict[str, list[int]] = defaultdict(list)
        for i in idx[real[idx]]:
            for g in groups[i]:
                members[g].append(int(i))
        return {g: line(np.asarray(m)) for g, m in members.items()
                if len(m) >= op.MIN_GROUP_FILES and len(set(src[m])) >= op.MIN_GROUP_SOURCES}

    # name -> (pooled line's FPR, the group line rule or None)
    policies: dict[str, tuple[float, Callable[[np.ndarray], float] | None]] = {
        "pooled 5 % only": (0.05, None),
        "pooled 5 % + groups 5 %": (0.05, lambda m: q(m, 0.05)),
        "pooled 5 % + groups 3 % (shipped)": (0.05, lambda m: q(m, 0.03)),
        "pooled 5 % + groups 2 %": (0.05, lambda m: q(m, 0.02)),
        "pooled 5 % + groups 1.5 %": (0.05, lambda m: q(m, 0.015)),
        "pooled 4 % + groups 3 %": (0.04, lambda m: q(m, 0.03)),
        "pooled 5 % + groups, inner leave-one-source-out level": (0.05, inner_loso),
        "pooled 5 % + groups 3 %, sources weighted equally": (0.05, lambda m: q_sources(m, 0.03)),
        "pooled 5 % + groups 5 %, sources weighted equally": (0.05, lambda m: q_sources(m, 0.05)),
    }
    print(f"{args.model}, {args.condition}, {args.line_groups} groups, nested by source; "
          f"{len(set(src))} sources, {len(items)} files")
    print("| policy | real-video FPR | AI-video TPR | video groups > 5 % | real-image FPR "
          "| AI-image TPR | image groups > 5 % | real sources > 5 % (video / image) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (pooled_fpr, line) in policies.items():
        thr = np.full(len(items), np.nan)
        for mt in ("video", "image"):
            idx = np.flatnonzero(media == mt)
            for s in sorted(set(src[idx])):
                keep = idx[src[idx] != s]
                pooled = q(keep[real[keep]], pooled_fpr)
                by = group_lines(keep, line) if line else {}
                for i in idx[src[idx] == s]:
                    thr[i] = max([pooled, *(by[g] for g in groups[i] if g in by)])
        rates = op.rate_rows(z, thr, items)
        cells = []
        for mt in ("video", "image"):
            r = rates["media"][mt]
            over = ", ".join(f"{g} {100 * s['fpr']:.1f} %" for g, s in rates["format"][mt].items()
                             if s["n_real"] >= 20 and s["fpr"] > 0.05) or "none"
            cells += [f"{100 * r['fpr']:.1f} %", f"{100 * r['tpr']:.1f} %", over]
        n_src = [sum(1 for s in rates["source"][mt].values() if s["fpr"] > 0.05)
                 for mt in ("video", "image")]
        print(f"| {name} | " + " | ".join(cells) + f" | {n_src[0]} / {n_src[1]} |", flush=True)


if __name__ == "__main__":
    main()
