"""Do trajectory features of per-frame CLIP embeddings (D3 / ReStraV style) add anything?

For every video of the manifests, the first 9 consecutive frames (logo corner masked;
``--condition laundered+masked`` decodes the H.264 CRF 28 copy) are encoded with the CLIP
encoder of ``semantic_clip``; from the 9 embeddings: mean / std / max of the step lengths
(cosine distance of consecutive frames), mean |second difference| and its std (D3's
"spread of second-order differences"), mean / std of the turning angles (ReStraV), and the
end-to-end distance. A leave-one-source-out logistic probe then compares, on videos only:
the two shipped detectors' out-of-fold logits (``oof_scores.tsv`` of ``antifake train``),
the same plus the trajectory features, and the trajectory features alone. Embeddings are
cached in ``var/traj``. Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_trajectory.py --oof var/model_v03loso/oof_scores.tsv \\
        --media-root var/corpus ../shared/corpus/manifest.tsv \\
        ../shared/corpus/extra-video-manifest.tsv ../shared/corpus/extra-image-manifest.tsv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import multiprocessing as mp
from pathlib import Path

import av
import numpy as np

from antifake.training.data import load_manifests
from antifake.training.media_io import launder_file, mask_logo
from antifake.training.metrics import roc_auc
from antifake.training.probe import balanced_weights, fit_probe

N_FRAMES = 9
CACHE = Path("var/traj")


def _key(path: str, cond: str) -> Path:
    return CACHE / f"{hashlib.sha1(f'{path}|{cond}'.encode()).hexdigest()[:16]}.npy"


def _embed(args: tuple[str, str]) -> str | None:
    from antifake import clip_encoder

    path, cond = args
    dst = _key(path, cond)
    if dst.exists():
        return None
    try:
        src = launder_file(Path(path), Path("var")) if "laundered" in cond else Path(path)
        frames = []
        with av.open(str(src)) as c:
            for f in c.decode(video=0):
                frames.append(mask_logo(f.to_ndarray(format="rgb24")))
                if len(frames) >= N_FRAMES:
                    break
        emb = clip_encoder.encode(frames, threads=1)[:, :512]
        dst.parent.mkdir(parents=True, exist_ok=True)
        np.save(dst, emb)
    except Exception as exc:  # noqa: BLE001 - report and go on
        return f"{path}: {exc}"
    return None


def trajectory_features(e: np.ndarray) -> np.ndarray | None:
    if len(e) < 4:
        return None
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    d = 1 - (e[1:] * e[:-1]).sum(1)
    dd = np.diff(d)
    v = e[1:] - e[:-1]
    nv = np.linalg.norm(v, axis=1) + 1e-9
    ang = np.arccos(np.clip((v[1:] * v[:-1]).sum(1) / (nv[1:] * nv[:-1]), -1, 1))
    return np.asarray([np.log(d.mean() + 1e-6), np.log(d.std() + 1e-6),
                       np.log(np.abs(dd).mean() + 1e-6), np.log(dd.std() + 1e-6),
                       np.log(d.max() + 1e-6), ang.mean(), ang.std(),
                       np.log(np.linalg.norm(e[-1] - e[0]) + 1e-6)])


def _logit(p: str) -> float:
    q = min(max(float(p), 1e-6), 1 - 1e-6)
    return math.log(q / (1 - q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifests", nargs="+")
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--oof", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    videos = [it for it in load_manifests(args.manifests, args.media_root).items
              if it.media_type == "video"]
    conds = ("masked", "laundered+masked")
    jobs = [(str(it.path), c) for c in conds for it in videos]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        errors = [e for e in pool.imap_unordered(_embed, jobs, chunksize=4) if e]
    print(f"{len(videos)} videos, {len(errors)} unreadable")
    with args.oof.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["group"] == "video"]
    for cond in conds:
        base, full, y, src = [], [], [], []
        for r in (r for r in rows if r["condition"] == cond):
            p = _key(r["file"], cond)
            t = trajectory_features(np.load(p)) if p.exists() else None
            if t is None:
                continue
            b = [_logit(r["semantic_clip"]), _logit(r["forensic_image"])]
            base.append(b)
            full.append(b + list(t))
            y.append(int(r["is_ai"]))
            src.append(r["source"])
        yy, ss = np.asarray(y), np.asarray(src)
        for name, x in (("shipped detectors", np.asarray(base)),
                        ("shipped + trajectory", np.asarray(full)),
                        ("trajectory only", np.asarray(full)[:, 2:])):
            z = np.full(len(yy), np.nan)
            for s in np.unique(ss):
                tr = ss != s
                if len(set(yy[tr])) < 2:
                    continue
                w = balanced_weights([str(v) for v in yy[tr]], list(ss[tr]))
                z[~tr] = fit_probe(x[tr], yy[tr], w, 2, 1.0).logits(x[~tr])[:, 0]
            ok = np.isfinite(z)
            thr = np.quantile(z[ok & (yy == 0)], 0.95)
            print(f"{cond}: {name}: {int(ok.sum())} videos, AUC {roc_auc(yy[ok], z[ok]):.3f}, "
                  f"TPR at 5 % FPR {float((z[ok & (yy == 1)] > thr).mean()):.3f}")


if __name__ == "__main__":
    main()
