"""Trajectory geometry of CLIP block tokens over 2 s at 12 frames/s (ReStraV-style): does it
separate AI from real video on the broad corpus and on sources no model saw?

ReStraV (Interno et al., NeurIPS 2025, "AI-generated video detection via perceptual
straightening") samples 24 frames over a clip's first 2 s, embeds them with a frozen
self-supervised encoder and feeds the geometry of the embedding trajectory (step lengths
and curvature, i.e. the turning angle between consecutive steps) to a small classifier:
natural video traces straighter paths. ``bench/eval_trajectory.py`` tried a weaker form
(9 consecutive frames, ~0.3 s, final CLIP embedding only) and found nothing. This one
follows the paper's sampling (24 frames at 12 frames/s) and reads every block's class
token of the CLIP tower that ``semantic_clip`` already runs (the early blocks are the
perceptual ones), plus the 2 frames/s sampling the engine encodes anyway (up to 12
frames, first 6 s), whose trajectory would cost nothing at inference.

Training videos (the three shared manifests) are read as the ``laundered+masked``
condition (H.264 CRF 28 <= 720p copy, logo corner masked after decoding); videos of the
evaluation manifests as the engine's judged copies (masked, then re-encoded). Per-video
block tokens are cached in ``var/restrav`` (float16). Then:

1. out of fold, 10 folds by source repository (the folds of ``bench/explore_families.py``):
   the ``clipm`` probe alone (the shipped recipe), the trajectory probe alone, and both
   stacked (a logistic fit of the probe's logit plus the trajectory features);
2. on the evaluation manifests: the engine's ``ai_probability`` (``--engine-json``,
   written by ``bench/eval_clip_arithmetic.py --json-out``) against the same stacked
   model fitted on all training videos.

Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_restrav.py --media-root ../shared/corpus \\
        --media-root var/corpus \\
        --train ../shared/corpus/manifest.tsv ../shared/corpus/extra-video-manifest.tsv \\
            ../shared/corpus/extra-image-manifest.tsv \\
        --unseen data/manifests/commercial-generators.tsv \\
            data/manifests/open-video-generators.tsv data/manifests/real-video.tsv \\
            data/manifests/talking-heads.tsv data/manifests/real-gif-lowres.tsv \\
        --engine-json var/added-judged.json var/th-judged.json var/rg-judged.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pool import run_jobs  # noqa: E402
from explore_families import K, _fold, oof_logits  # noqa: E402

from antifake.training.data import Item, load_manifests  # noqa: E402
from antifake.training.metrics import roc_auc  # noqa: E402
from antifake.training.probe import balanced_weights, fit_probe  # noqa: E402

CACHE = Path("var/restrav")
FAST_FPS, FAST_N = 12.0, 24  # ReStraV: 24 frames over the first 2 s
SLOW_FPS, SLOW_N = 2.0, 12  # what semantic_clip encodes (MAX_FPS = 2), first 6 s


def _key(path: Path, kind: str) -> Path:
    return CACHE / f"{hashlib.sha1(f'{path.resolve()}|{kind}'.encode()).hexdigest()[:16]}.npz"


def _sample(src: Path, mask: bool) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Frames at FAST_FPS over the first FAST_N / FAST_FPS s and at SLOW_FPS over the
    first SLOW_N / SLOW_FPS s (a clip slower than the rate gives every frame)."""
    from antifake.training.media_io import mask_logo

    fast: list[np.ndarray] = []
    slow: list[np.ndarray] = []
    next_fast = next_slow = 0.0
    fps = 0.0
    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate or 0)
        for i, f in enumerate(c.decode(stream)):
            t = float(f.time) if f.time is not None else i / (fps or 25.0)
            take_fast = len(fast) < FAST_N and t + 1e-6 >= next_fast
            take_slow = len(slow) < SLOW_N and t + 1e-6 >= next_slow
            if take_fast or take_slow:
                rgb = f.to_ndarray(format="rgb24")
                if mask:
                    rgb = mask_logo(rgb)
                if take_fast:
                    fast.append(rgb)
                    next_fast = len(fast) / FAST_FPS
                if take_slow:
                    slow.append(rgb)
                    next_slow = len(slow) / SLOW_FPS
            if len(fast) >= FAST_N and len(slow) >= SLOW_N:
                break
    return fast, slow, fps


def _embed(args: tuple[str, str]) -> str | None:
    from antifake import clip_encoder
    from antifake.training.media_io import judged_copy, launder_file

    path, kind = args
    dst = _key(Path(path), kind)
    if dst.exists():
        return None
    try:
        if kind == "laundered+masked":
            fast, slow, fps = _sample(launder_file(Path(path), Path("var")), mask=True)
        else:  # judged: the masked, re-encoded copy an outside evaluation hands over
            fast, slow, fps = _sample(judged_copy(Path(path), Path("var")), mask=False)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp.npz")
        np.savez(tmp, fast=clip_encoder.encode(fast, threads=1).astype(np.float16),
                 slow=clip_encoder.encode(slow, threads=1).astype(np.float16),
                 fps=np.float32(fps))
        tmp.rename(dst)
    except Exception as exc:  # noqa: BLE001 - report and go on
        return f"{path}: {exc!r}"
    return None


def _blocks(e: np.ndarray) -> list[np.ndarray]:
    """The trajectories read: the final embedding and each block's class token."""
    from antifake.clip_encoder import LAYER_OFFSET, LAYERS, WIDTH

    out = [e[:, :512]]
    out += [e[:, LAYER_OFFSET + b * WIDTH:LAYER_OFFSET + (b + 1) * WIDTH] for b in range(LAYERS)]
    return out


N_GEOM = 8


def geometry(x: np.ndarray) -> np.ndarray:
    """Step-length and curvature statistics of one trajectory (frames x dims).

    Repeated frames (GIF holds, duplicated frames of a slowed clip) are dropped first: a
    zero step has no direction. Steps are normalised by the mean token norm, so a block's
    scale does not enter. NaN when fewer than 4 distinct frames remain.
    """
    x = x.astype(np.float64)
    keep = [0]
    for i in range(1, len(x)):
        if np.linalg.norm(x[i] - x[keep[-1]]) > 1e-3 * (np.linalg.norm(x[i]) + 1e-9):
            keep.append(i)
    x = x[keep]
    if len(x) < 4:
        return np.full(N_GEOM, np.nan)
    scale = np.linalg.norm(x, axis=1).mean() + 1e-9
    v = np.diff(x, axis=0) / scale
    d = np.linalg.norm(v, axis=1) + 1e-12
    cos = (v[1:] * v[:-1]).sum(1) / (d[1:] * d[:-1])
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    logd = np.log(d)
    dd = np.diff(d)
    return np.asarray([logd.mean(), logd.std(), theta.mean(), theta.std(), theta.min(),
                       theta.max(), np.log(np.abs(dd).mean() / d.mean() + 1e-9),
                       np.log(np.linalg.norm(x[-1] - x[0]) / scale / d.sum() + 1e-9)])


def features(path: Path, kind: str, which: str) -> np.ndarray | None:
    p = _key(path, kind)
    if not p.exists():
        return None
    z = np.load(p)
    e = z[which].astype(np.float32)
    if len(e) < 4:
        return None
    return np.concatenate([geometry(b) for b in _blocks(e)])


# columns of the compact variant: mean curvature of the final embedding and blocks 1-3
COMPACT = [2, 2 + N_GEOM, 2 + 2 * N_GEOM, 2 + 3 * N_GEOM]


def _matrix(items: list[Item], kind: str, which: str) -> np.ndarray:
    """Trajectory features of ``items`` (rows of NaN where a video has none)."""
    rows = []
    for it in items:
        f = features(it.path, kind, which)
        rows.append(f if f is not None else np.full(13 * N_GEOM, np.nan))
    return np.stack(rows)


def _fill(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    x = x.copy()
    bad = ~np.isfinite(x)
    x[bad] = np.broadcast_to(mu, x.shape)[bad]
    return x


def _fit_predict(xtr: np.ndarray, ytr: np.ndarray, str_: list[str], xte: np.ndarray,
                 l2: float) -> np.ndarray:
    mu = np.nanmean(xtr, axis=0)
    xtr, xte = _fill(xtr, mu), _fill(xte, mu)
    sd = xtr.std(0) + 1e-9
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    w = balanced_weights([str(v) for v in ytr], str_)
    return np.asarray(fit_probe(xtr, ytr, w, 2, l2).logits(xte)[:, 0])


def _tpr_at(y: np.ndarray, z: np.ndarray, fpr: float = 0.05) -> float:
    thr = np.quantile(z[y == 0], 1 - fpr)
    return float((z[y == 1] > thr).mean())


def _clip_oof(items: list[Item], media_roots: list[str]) -> np.ndarray:
    """Out-of-fold logits of the shipped semantic_clip recipe (clipm probe, L2 0.1, trained
    masked + debias + laundered, judged laundered + masked) for ``items``."""

    from antifake.training.features import FeatureExtractor

    fx = FeatureExtractor(Path("var"), max_frames=4)
    everything = load_manifests(ARGS.train, media_roots).items
    z_all = oof_logits(fx, everything, ["clipm"],
                       ["masked", "debias+masked", "laundered+masked"], "laundered+masked", 0.1)
    by_sha = {it.sha1 or str(it.path): z for it, z in zip(everything, z_all, strict=True)}
    return np.asarray([by_sha.get(it.sha1 or str(it.path), np.nan) for it in items])


ARGS: argparse.Namespace


def video_set_arguments(ap: argparse.ArgumentParser) -> None:
    """The training / never-seen manifests and media roots of the scripts reading this
    cache."""
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--unseen", nargs="*", default=[])
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--workers", type=int, default=2)


def embedded_videos(args: argparse.Namespace) -> tuple[list[Item], list[Item]]:
    """(training videos, never-seen videos) of ``args``' manifests, each encoded into the
    cache first where missing (training ones ``laundered+masked``, never-seen ones as the
    engine's judged copies)."""
    train = [it for it in load_manifests(args.train, args.media_root).items
             if it.media_type == "video"]
    unseen = [it for it in load_manifests(args.unseen, args.media_root).items
              if it.media_type == "video"] if args.unseen else []
    jobs = ([(str(it.path), "laundered+masked") for it in train]
            + [(str(it.path), "judged") for it in unseen])
    print(f"{len(train)} training videos, {len(unseen)} unseen", flush=True)
    run_jobs(_embed, jobs, lambda j: _key(Path(j[0]), j[1]).exists(), args.workers,
             chunksize=2, every=100)
    return train, unseen


def main() -> None:
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    video_set_arguments(ap)
    ap.add_argument("--engine-json", nargs="*", default=[])
    ap.add_argument("--embed-only", action="store_true")
    ap.add_argument("--l2", type=float, nargs="+", default=[1.0, 10.0])
    ARGS = args = ap.parse_args()

    train, unseen = embedded_videos(args)
    if args.embed_only:
        return

    y = np.asarray([int(it.is_ai) for it in train])
    src = [it.source for it in train]
    folds = _fold(train)
    zc = _clip_oof(train, args.media_root)
    print(f"clipm probe OOF on {len(y)} videos: AUC {roc_auc(y, zc):.3f}, "
          f"TPR@5 % {_tpr_at(y, zc):.3f}")
    runway = np.asarray(["runway" in it.label for it in train])
    for which in ("fast", "slow"):
        traj = _matrix(train, "laundered+masked", which)
        has = np.isfinite(traj).any(1)
        print(f"\n[{which}] {int(has.sum())} of {len(y)} videos with a trajectory")
        for l2 in args.l2:
            for name, x in (("trajectory alone", traj),
                            ("clipm logit + trajectory", np.column_stack([zc, traj])),
                            ("clipm logit + mean curvature (embedding, blocks 1-3)",
                             np.column_stack([zc, traj[:, COMPACT]]))):
                z = np.full(len(y), np.nan)
                for k in range(K):
                    te = folds == k
                    tr = ~te
                    z[te] = _fit_predict(x[tr], y[tr], [src[i] for i in np.where(tr)[0]],
                                         x[te], l2)
                rw = (runway | (y == 0))
                print(f"  L2 {l2:g} {name}: AUC {roc_auc(y, z):.3f}, TPR@5 % "
                      f"{_tpr_at(y, z):.3f}, Runway AUC {roc_auc(y[rw], z[rw]):.3f}")
        rw = runway | (y == 0)
        print(f"  clipm alone: Runway AUC {roc_auc(y[rw], zc[rw]):.3f}")

    if not unseen or not args.engine_json:
        return
    engine: dict[str, dict] = {}
    for f in args.engine_json:
        for r in json.loads(Path(f).read_text()):
            engine[str(Path(r["path"]).resolve())] = r
    rows: list[tuple[Item, dict]] = []
    for it in unseen:
        r = engine.get(str(Path(it.path).resolve()))
        if r and r.get("ai_probability") is not None:
            rows.append((it, r))
    yu = np.asarray([int(it.is_ai) for it, _ in rows])
    pe = np.asarray([min(max(r["ai_probability"], 1e-6), 1 - 1e-6) for _, r in rows])
    ze = np.log(pe / (1 - pe))
    pc = np.asarray([min(max(r["scores"].get("semantic_clip") or 0.5, 1e-6), 1 - 1e-6)
                     for _, r in rows])
    zcu = np.log(pc / (1 - pc))
    nsrc = defaultdict(set)
    for (it, _), v in zip(rows, yu, strict=True):
        nsrc[v].add(it.source)
    print(f"\nunseen: {int(yu.sum())} AI videos ({len(nsrc[1])} sources), "
          f"{int((1 - yu).sum())} real ({len(nsrc[0])} sources)")
    print(f"  engine ai_probability: AUC {roc_auc(yu, ze):.3f}, TPR@5 % {_tpr_at(yu, ze):.3f}")
    print(f"  engine semantic_clip: AUC {roc_auc(yu, zcu):.3f}, TPR@5 % {_tpr_at(yu, zcu):.3f}")
    for which in ("fast", "slow"):
        traj_tr = _matrix(train, "laundered+masked", which)
        traj_u = _matrix([it for it, _ in rows], "judged", which)
        for l2 in args.l2:
            zt = _fit_predict(traj_tr, y, src, traj_u, l2)
            print(f"  [{which}] L2 {l2:g} trajectory alone: AUC {roc_auc(yu, zt):.3f}")
            zk = _fit_predict(np.column_stack([zc, traj_tr[:, COMPACT]]), y, src,
                              np.column_stack([zcu, traj_u[:, COMPACT]]), l2)
            print(f"  [{which}] L2 {l2:g} semantic_clip logit + mean curvature: AUC "
                  f"{roc_auc(yu, zk):.3f}, TPR@5 % {_tpr_at(yu, zk):.3f}")
            zs = _fit_predict(np.column_stack([zc, traj_tr]), y, src,
                              np.column_stack([zcu, traj_u]), l2)
            print(f"  [{which}] L2 {l2:g} semantic_clip logit + trajectory: AUC "
                  f"{roc_auc(yu, zs):.3f}, TPR@5 % {_tpr_at(yu, zs):.3f}")
            by = defaultdict(list)
            for (it, _), a, b in zip(rows, zcu, zs, strict=True):
                by[it.label].append((a, b))
            if l2 == args.l2[0]:
                real = [(a, b) for (it, _), a, b in zip(rows, zcu, zs, strict=True)
                        if not it.is_ai]
                ra, rb = np.asarray(real).T
                for lab, v in sorted(by.items()):
                    if lab == "real_video" or len(v) < 5:
                        continue
                    a, b = np.asarray(v).T
                    ya = np.r_[np.ones(len(a)), np.zeros(len(ra))]
                    print(f"    {lab}: n={len(a)} AUC clip {roc_auc(ya, np.r_[a, ra]):.3f} -> "
                          f"{roc_auc(ya, np.r_[b, rb]):.3f}")


if __name__ == "__main__":
    main()
