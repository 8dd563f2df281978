"""Does the `temporal` detector earn a vote once refitted on the broad corpus?

The shipped ``temporal`` pair model (``detectors/temporal/model.json``) was fitted on the
390-file development corpus (14 sources) and does not vote (``calibration.json``
ignores it: AUC 0.69 on unseen sources). This bench refits the same model - the same
features, the same motion-balanced weighting (``temporal.train.fit``) - on every video of
the training manifests and asks two questions, on files handed over as an outside
evaluation does it (``media_io.judged_copy``: logo corner masked, H.264 CRF 28, short
side <= 720):

1. Out of fold (``--folds`` source-grouped folds over the training manifests, the folds of
   ``antifake evaluate --split source-10fold``): AUC of AI
   vs real video, per published format, for the shipped and the refitted pair model.
2. On the ``--unseen`` manifests (sources in no training manifest): AUC of the shipped
   and the refitted model (fitted on all training videos), and - given ``--engine-json``
   (``bench/eval_clip_arithmetic.py --launder --json-out`` over the same files) - whether
   adding the temporal logit to the engine's fused logit helps: a logistic fusion of the
   two logits fitted by source-grouped cross-validation on the unseen files (every source
   judged by weights fitted without it), AUC and TPR at the 5 % real-FPR line, against
   the engine alone.

Features: up to 40 evenly spread consecutive-frame pairs per video (``corpus.clip_features``,
gap 1), cached per sha1 under ``--cache-dir``/temporal-features. Usage (repo root)::

    PYTHONPATH=src python bench/eval_temporal_broad.py --media-root var/corpus \\
        --train ../shared/corpus/manifest.tsv ../shared/corpus/extra-video-manifest.tsv \\
        --unseen data/manifests/commercial-generators.tsv \\
            data/manifests/open-video-generators.tsv data/manifests/real-video.tsv \\
        --engine-json var/judged-v04.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from antifake.detectors.temporal.corpus import Clip, clip_features
from antifake.detectors.temporal.model import PairModel, fit_logistic, load_packaged_model
from antifake.detectors.temporal.train import Block, clip_score, fit
from antifake.training.data import Item, load_manifests, source_fold
from antifake.training.media_io import judged_copy
from antifake.training.metrics import roc_auc, threshold_at_fpr

GIF_SUFFIXES = (".gif",)


def video_items(manifests: list[str], media_roots: list[str]) -> list[Item]:
    """The present video files of ``manifests`` (sha1-deduplicated)."""
    return [it for it in load_manifests(manifests, media_roots).items
            if it.media_type == "video"]


def features_of(it: Item, cache_dir: Path) -> np.ndarray:
    """Pair features of ``it``'s judged copy (cached by sha1); empty on a decode error."""
    out = cache_dir / "temporal-features" / f"{it.key}.npy"
    if out.exists():
        return np.load(out)
    try:
        feats = clip_features(judged_copy(it.path, cache_dir))
    except Exception as exc:  # noqa: BLE001 - a bench reports and skips unreadable files
        print(f"  skipped {it.path}: {exc}", file=sys.stderr)
        feats = np.zeros((0, 1), np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, feats)
    return feats


def blocks_of(items: list[Item], cache_dir: Path) -> list[Block]:
    blocks, t0 = [], time.time()
    for k, it in enumerate(items):
        f = features_of(it, cache_dir)
        if len(f):  # an unreadable file was cached as an empty array
            clip = Clip(str(it.path), int(it.is_ai), it.label, it.source)
            blocks.append(Block(clip, "judged", 1, f))
        if (k + 1) % 100 == 0:
            print(f"  features {k + 1}/{len(items)} ({time.time() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
    return blocks


def clip_logit(model: PairModel, b: Block) -> float:
    return clip_score(model, b.feats)


def fmt(b: Block) -> str:
    return "GIF" if b.clip.file.lower().endswith(GIF_SUFFIXES) else "video file"


def auc_row(name: str, blocks: list[Block], scores: np.ndarray) -> str:
    y = np.asarray([b.clip.label for b in blocks])
    n_src = [len({b.clip.source_repo for b in blocks if b.clip.label == s}) for s in (1, 0)]
    auc = roc_auc(y, scores) if 0 < y.sum() < len(y) else float("nan")
    return (f"| {name} | {auc:.3f} | {int(y.sum())} ({n_src[0]}) "
            f"| {int((1 - y).sum())} ({n_src[1]}) |")


def out_of_fold(blocks: list[Block], folds: int, l2: float) -> np.ndarray:
    scores = np.full(len(blocks), np.nan)
    fold = np.asarray([source_fold(b.clip.source_repo, folds) for b in blocks])
    for f in range(folds):
        train = [b for b, g in zip(blocks, fold, strict=True) if g != f]
        model = fit(train, l2=l2)
        for i in np.flatnonzero(fold == f):
            scores[i] = clip_logit(model, blocks[i])
    return scores


def fusion_cv(engine_logit: np.ndarray, temporal_logit: np.ndarray, y: np.ndarray,
              sources: list[str], folds: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Out-of-fold fused logits of [engine, temporal] by source-grouped folds."""
    x = np.stack([engine_logit, temporal_logit], axis=1)
    fold = np.asarray([source_fold(s, folds) for s in sources])
    out = np.full(len(y), np.nan)
    coefs = []
    for f in range(folds):
        tr = fold != f
        if not (y[tr].any() and (~y[tr].astype(bool)).any()) or not (fold == f).any():
            continue
        # class-balanced weights: the fusion must not learn the files' AI/real ratio
        w = np.where(y[tr] == 1, 0.5 / y[tr].sum(), 0.5 / (1 - y[tr]).sum())
        mean, scale, coef, bias = fit_logistic(x[tr], y[tr].astype(float), w, l2=1e-3)
        coefs.append(coef / scale)
        z = np.clip((x[fold == f] - mean) / scale, -6.0, 6.0)
        out[fold == f] = z @ coef + bias
    return out, coefs


def tpr_at_line(y: np.ndarray, s: np.ndarray, fpr: float = 0.05) -> str:
    line = threshold_at_fpr(s[y == 0], fpr)
    return f"{(s[y == 1] > line).mean():.1%} / {(s[y == 0] > line).mean():.1%}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", nargs="+", required=True, help="training manifests")
    ap.add_argument("--unseen", nargs="*", default=[], help="manifests of unseen sources")
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--l2", type=float, default=0.02)
    ap.add_argument("--engine-json", type=Path, default=None)
    ap.add_argument("--save-model", type=Path, default=None,
                    help="write the pair model fitted on every training video here")
    args = ap.parse_args(argv)
    cv2.setNumThreads(2)

    shipped = load_packaged_model()
    train = blocks_of(video_items(args.train, args.media_root), args.cache_dir)
    print(f"\ntraining videos with features: {len(train)} from "
          f"{len({b.clip.source_repo for b in train})} sources")
    oof = out_of_fold(train, args.folds, args.l2)
    ship = np.asarray([clip_logit(shipped, b) for b in train])
    print(f"\n### Training manifests, judged copies ({args.folds} source folds)\n")
    print("| pair model, files | AUC | AI files (sources) | real files (sources) |")
    print("|---|---|---|---|")
    for group in ("all", "GIF", "video file"):
        sel = [i for i, b in enumerate(train) if group == "all" or fmt(b) == group]
        sub = [train[i] for i in sel]
        print(auc_row(f"refitted, out of fold, {group}", sub, oof[sel]))
        print(auc_row(f"shipped (dev corpus; in sample where it overlaps), {group}", sub,
                      ship[sel]))
    runway = [i for i, b in enumerate(train) if b.clip.label == 0
              or b.clip.generator.startswith("runway")]
    print(auc_row("refitted, out of fold, Runway vs real", [train[i] for i in runway],
                  oof[runway]))

    final = fit(train, l2=args.l2)
    if args.save_model is not None:
        final.meta = {"trained_on": " ".join(args.train), "n_clips": len(train),
                      "l2": args.l2, "variant": "judged copy (masked, H.264 CRF 28, <=720p)"}
        final.save(args.save_model)
    if not args.unseen:
        return 0
    unseen = blocks_of(video_items(args.unseen, args.media_root), args.cache_dir)
    s_ref = np.asarray([clip_logit(final, b) for b in unseen])
    s_ship = np.asarray([clip_logit(shipped, b) for b in unseen])
    print(f"\n### Unseen sources ({' '.join(args.unseen)}), judged copies\n")
    print("| pair model | AUC | AI files (sources) | real files (sources) |")
    print("|---|---|---|---|")
    print(auc_row("refitted on the training manifests", unseen, s_ref))
    print(auc_row("shipped", unseen, s_ship))
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, b in enumerate(unseen):
        if b.clip.label:
            by_label[b.clip.generator].append(i)
    real = [i for i, b in enumerate(unseen) if not b.clip.label]
    print("\nper generator vs the unseen real videos (refitted / shipped AUC):")
    for label, idx in sorted(by_label.items()):
        sel = idx + real
        y = np.asarray([unseen[i].clip.label for i in sel])
        print(f"  {label} ({len(idx)}): {roc_auc(y, s_ref[sel]):.3f} / "
              f"{roc_auc(y, s_ship[sel]):.3f}")

    if args.engine_json is None:
        return 0
    rows = {r["path"]: r for r in json.loads(args.engine_json.read_text("utf-8"))
            if r.get("arithmetic", "exact") == "exact"}
    keep = [i for i, b in enumerate(unseen)
            if b.clip.file in rows and rows[b.clip.file]["ai_probability"] is not None]
    p = np.clip([rows[unseen[i].clip.file]["ai_probability"] for i in keep], 1e-6, 1 - 1e-6)
    eng = np.log(p / (1 - p))
    y = np.asarray([unseen[i].clip.label for i in keep])
    sources = [unseen[i].clip.source_repo for i in keep]
    print(f"\n### Engine + temporal on the unseen videos ({len(keep)} files, "
          f"{len(set(sources))} sources; fusion fitted by {args.folds} source-grouped folds "
          "over these files)\n")
    print("| score | AUC | AI above the 5 % line / real above it (in sample line) |")
    print("|---|---|---|")
    print(f"| engine (forensic_image + semantic_clip, shipped fusion) | {roc_auc(y, eng):.3f} "
          f"| {tpr_at_line(y, eng)} |")
    for name, t in (("refitted temporal", s_ref[keep]), ("shipped temporal", s_ship[keep])):
        print(f"| {name} alone | {roc_auc(y, t):.3f} | {tpr_at_line(y, t)} |")
        fused, coefs = fusion_cv(eng, t, y, sources, args.folds)
        ok = np.isfinite(fused)
        c = np.mean(coefs, axis=0)
        print(f"| engine + {name} (weights {c[0]:.2f} / {c[1]:.2f}, out of fold; "
              f"{int(ok.sum())} files) | {roc_auc(y[ok], fused[ok]):.3f} "
              f"| {tpr_at_line(y[ok], fused[ok])} |")
        print(f"| engine alone, same {int(ok.sum())} files | {roc_auc(y[ok], eng[ok]):.3f} "
              f"| {tpr_at_line(y[ok], eng[ok])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
