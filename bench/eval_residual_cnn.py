"""A small native-resolution residual CNN trained from scratch vs the frozen CLIP probe.

Issue 9 asks to compare an NPR/SAFE-style CNN trained from scratch on native-resolution
pixels with the frozen-probe family. This script does it within what a 2-core CPU allows:

* **Crops**: per file (2 frames per video), ``--crops`` random 48x48 crops at the file's
  native resolution, away from the masked logo corner, under ``masked`` and
  ``laundered+masked`` (the same decoded frames as ``antifake train``; laundered copies
  come from the training cache). Cached in ``--out``/crops.npz.
* **Model**: NPR input (Tan et al., CVPR 2024: the image minus its 2x nearest-neighbour
  down-up-sampled self, which keeps the up-sampling traces generators leave), then 3
  conv-BN-ReLU blocks (32, 64, 128 channels, max-pool between), global average pool,
  linear. Trained with AdamW, class x media type balanced weights, random flips.
* **Split**: ``--folds`` folds by source repository (hash of the name); both models are
  fitted on the same training sources: the CNN on crops of ``masked`` and
  ``laundered+masked``, the linear probe on the ``clipm`` features of the same conditions
  (L2 0.1, as shipped). File score = mean logit over its crops / frames, on
  ``masked`` and on ``laundered+masked`` held-out files.

Prints AUC (AI video vs real video, Runway vs real video, AI image vs real image) and
TPR at 5 % FPR (pooled threshold) for the CNN, the probe and their late fusion
(``z_cnn / std + z_probe / std``). Needs the feature cache filled (``antifake evaluate``).
Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_residual_cnn.py --media-root var/corpus \\
        ../shared/corpus/manifest.tsv ../shared/corpus/extra-video-manifest.tsv \\
        ../shared/corpus/extra-image-manifest.tsv [--folds 3] [--epochs 4]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from antifake.training.data import Item, load_manifests
from antifake.training.features import FeatureExtractor
from antifake.training.media_io import LOGO_BOX, frames_for_condition
from antifake.training.metrics import roc_auc
from antifake.training.probe import balanced_weights, fit_probe

CONDITIONS = ("masked", "laundered+masked")
CROP = 48


def _crops(rgb: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` native-resolution crops, none overlapping the masked logo corner."""
    h, w = rgb.shape[:2]
    if min(h, w) < CROP:  # tiny frames: reflect-pad up to one crop
        rgb = np.pad(rgb, ((0, max(0, CROP - h)), (0, max(0, CROP - w)), (0, 0)), "reflect")
        h, w = rgb.shape[:2]
    rng = np.random.default_rng(seed)
    out = []
    tries = 20 * n
    for attempt in range(tries):
        top, left = int(rng.integers(0, h - CROP + 1)), int(rng.integers(0, w - CROP + 1))
        in_logo = (top + CROP > h * (1 - LOGO_BOX[1])) and (left + CROP > w * (1 - LOGO_BOX[0]))
        # Frames too small to avoid the corner still give their n crops.
        if not in_logo or tries - attempt <= n - len(out):
            out.append(rgb[top:top + CROP, left:left + CROP, :3])
        if len(out) == n:
            break
    return np.stack(out).astype(np.uint8)


def _one(args: tuple[Path, str, Path, int]) -> tuple[str, str, np.ndarray | None]:
    path, condition, cache, n = args
    try:
        frames = frames_for_condition(path, condition, cache, max_frames=2)
    except Exception:  # noqa: BLE001 - an undecodable file is left out, as in training
        return str(path), condition, None
    seed = int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16)
    return str(path), condition, np.concatenate(
        [_crops(f, n, seed + k) for k, f in enumerate(frames)]) if frames else None


def extract(items: list[Item], cache: Path, out: Path, n: int) -> dict[tuple[str, str], np.ndarray]:
    target = out / f"crops{CROP}x{n}.npz"
    if target.exists():
        data = np.load(target)
        return {tuple(k.split("|", 1)): data[k] for k in data.files}  # type: ignore[misc]
    import multiprocessing as mp

    jobs = [(it.path, c, cache, n) for c in CONDITIONS for it in items]
    got: dict[tuple[str, str], np.ndarray] = {}
    with mp.get_context("spawn").Pool(2) as pool:
        for done, (p, c, crops) in enumerate(pool.imap_unordered(_one, jobs, chunksize=8), 1):
            if crops is not None:
                got[(p, c)] = crops
            if done % 500 == 0:
                print(f"crops: {done}/{len(jobs)}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(target, **{f"{p}|{c}": v for (p, c), v in got.items()})
    return got


class ResidualCNN(torch.nn.Module):
    """NPR residual, three conv blocks, global average pool, one logit."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> torch.nn.Sequential:
            return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                       torch.nn.BatchNorm2d(cout), torch.nn.ReLU())

        self.body = torch.nn.Sequential(block(3, 32), torch.nn.MaxPool2d(2), block(32, 64),
                                        torch.nn.MaxPool2d(2), block(64, 128))
        self.head = torch.nn.Linear(128, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        down_up = torch.nn.functional.interpolate(x[:, :, ::2, ::2], scale_factor=2.0,
                                                  mode="nearest")
        npr = x - down_up
        return self.head(self.body(npr * 4.0).mean(dim=(2, 3)))[:, 0]


def _tensor(crops: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(crops, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0


def train_cnn(x: np.ndarray, y: np.ndarray, w: np.ndarray, epochs: int) -> ResidualCNN:
    torch.manual_seed(0)
    net = ResidualCNN()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    steps = epochs * ((len(x) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    yt, wt = torch.as_tensor(y, dtype=torch.float32), torch.as_tensor(w, dtype=torch.float32)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for b in range(0, len(x), 128):
            i = perm[b:b + 128]
            xb = _tensor(x[i.numpy()])
            if torch.rand(()) < 0.5:
                xb = xb.flip(3)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                net(xb), yt[i], reduction="none") * wt[i]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net


def _report(name: str, items: list[Item], z: np.ndarray) -> None:
    y = np.asarray([it.is_ai for it in items])
    mt = np.asarray([it.media_type for it in items])
    ok = np.isfinite(z)
    parts = []
    for m in ("video", "image"):
        sel = (mt == m) & ok
        thr = np.quantile(z[sel & ~y], 0.95)
        parts.append(f"{m} AUC {roc_auc(y[sel], z[sel]):.3f} "
                     f"TPR@5% {float((z[sel & y] > thr).mean()):.3f}")
    runway = np.asarray([it.label.startswith("runway") for it in items])
    sel = (mt == "video") & (runway | ~y) & ok
    parts.append(f"Runway AUC {roc_auc(y[sel], z[sel]):.3f}")
    print(f"| {name} | " + " | ".join(parts) + " |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--media-root", action="append", type=Path, default=[])
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--out", type=Path, default=Path("var/residual_cnn"))
    ap.add_argument("--crops", type=int, default=3, help="crops per frame")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(2)
    items = load_manifests(args.manifests, args.media_root).items
    t0 = time.perf_counter()
    crops = extract(items, args.cache_dir, args.out, args.crops)
    print(f"crops ready in {time.perf_counter() - t0:.0f} s", flush=True)
    fx = FeatureExtractor(args.cache_dir, max_frames=4)
    fold = np.asarray([int(hashlib.sha1(it.source.encode()).hexdigest(), 16) % args.folds
                       for it in items])
    z_cnn = {c: np.full(len(items), np.nan) for c in CONDITIONS}
    z_probe = {c: np.full(len(items), np.nan) for c in CONDITIONS}
    for k in range(args.folds):
        t1 = time.perf_counter()
        train = [i for i in range(len(items)) if fold[i] != k]
        xs, ys, groups, srcs, feats, fys, fgroups, fsrcs = [], [], [], [], [], [], [], []
        for c in CONDITIONS:
            for i in train:
                it = items[i]
                group = f"{int(it.is_ai)}_{it.media_type}"
                got = crops.get((str(it.path), c))
                if got is not None:
                    xs.append(got)
                    ys += [int(it.is_ai)] * len(got)
                    groups += [group] * len(got)
                    srcs += [it.source] * len(got)
                f = fx.frames_features("clipm", c, it)
                feats.append(f)
                fys += [int(it.is_ai)] * len(f)
                fgroups += [group] * len(f)
                fsrcs += [it.source] * len(f)
        x = np.concatenate(xs)
        net = train_cnn(x, np.asarray(ys), balanced_weights(groups, srcs), args.epochs)
        probe = fit_probe(np.concatenate(feats), np.asarray(fys),
                          balanced_weights(fgroups, fsrcs), 2, 0.1)
        with torch.no_grad():
            for c in CONDITIONS:
                for i in np.where(fold == k)[0]:
                    got = crops.get((str(items[i].path), c))
                    if got is not None:
                        z_cnn[c][i] = float(net(_tensor(got)).mean())
                    z_probe[c][i] = float(probe.logits(
                        fx.frames_features("clipm", c, items[i]))[:, 0].mean())
        print(f"fold {k}: {len(train)} training files, {len(x)} crops, "
              f"{time.perf_counter() - t1:.0f} s", flush=True)
    print(f"\n{len({it.source for it in items})} sources, {args.folds} folds by source; "
          f"{CROP}x{CROP} crops x {args.crops} per frame, {args.epochs} epochs")
    for c in CONDITIONS:
        _report(f"residual CNN (from scratch), {c}", items, z_cnn[c])
        _report(f"clipm probe (shipped features), {c}", items, z_probe[c])
        late = (np.where(np.isfinite(z_cnn[c]), z_cnn[c] / np.nanstd(z_cnn[c]), 0.0)
                + z_probe[c] / np.std(z_probe[c]))
        _report(f"late fusion, {c}", items, late)


if __name__ == "__main__":
    main()
