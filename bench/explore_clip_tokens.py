"""Do CLIP's *patch* tokens, pooled by a learnt attention, add to the class-token probe?

``semantic_clip`` reads the class token of each of the 12 blocks (a linear probe). The
class token summarises the picture; generator artefacts are often local (texture, hands,
lettering), and a mean or spread over the 196 patch tokens (``clipp``) did not help
(docs/benchmarks.md). This tries the multiple-instance form: every token t of a block gets
a logit s_t = w . LN(x_t) and an attention weight a_t = softmax_t(u . LN(x_t)); the
frame's logit is sum_t a_t s_t + b (2 x 768 weights and a LayerNorm per block), so a few
telling patches can decide. Frames: ``laundered+masked`` (H.264 CRF 28 <= 720p, logo
masked), 4 per video, as in the shipped probe's cache; the never-seen files are the
engine's judged copies. The full token maps of blocks ``--blocks`` are cached (float16)
in ``var/cliptok``.

Out of fold: 10 folds by source repository (the folds of ``bench/explore_families.py``),
AUC and TPR at 5 % FPR (pooled line) for AI vs real video / image and Runway vs real
video: the ``clipm`` class-token probe trained on the same single condition, the token
head per block, and the two stacked. Never-seen: fitted on all training files, judged on
the evaluation manifests. Usage (repo root, venv active)::

    PYTHONPATH=src python bench/explore_clip_tokens.py --media-root ../shared/corpus \\
        --media-root var/corpus --train ../shared/corpus/manifest.tsv \\
        ../shared/corpus/extra-video-manifest.tsv ../shared/corpus/extra-image-manifest.tsv \\
        --unseen data/manifests/commercial-generators.tsv \\
        data/manifests/open-video-generators.tsv data/manifests/real-video.tsv \\
        data/manifests/talking-heads.tsv data/manifests/real-gif-lowres.tsv \\
        data/manifests/heldout-images.tsv
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from _pool import run_jobs
from eval_restrav import video_set_arguments
from explore_families import K, _fold, oof_logits, report

from antifake.training.data import Item, load_manifests
from antifake.training.probe import balanced_weights

CACHE = Path("var/cliptok")
MAX_FRAMES = 4
BLOCKS: tuple[int, ...] = (6, 9, 12)


def _key(path: Path, kind: str) -> Path:
    return CACHE / f"{hashlib.sha1(f'{path.resolve()}|{kind}'.encode()).hexdigest()[:16]}.npy"


def _frames(path: Path, kind: str) -> list[np.ndarray]:
    from antifake.training.media_io import decode_frames, frames_for_condition, judged_copy

    if kind == "judged":
        return decode_frames(judged_copy(path, Path("var")), MAX_FRAMES)
    return frames_for_condition(path, "laundered+masked", Path("var"), MAX_FRAMES)


def _encode(args: tuple[str, str, tuple[int, ...]]) -> str | None:
    from antifake import clip_encoder

    path, kind, blocks = args
    dst = _key(Path(path), kind)
    if dst.exists():
        return None
    try:
        sess = clip_encoder.session(1)
        names = [clip_encoder.BLOCK_OUTPUTS[b - 1] for b in blocks]
        out = []
        for rgb in _frames(Path(path), kind):
            x = clip_encoder.preprocess(rgb)[None]
            out.append(np.stack([o[0] for o in sess.run(names, {"pixel_values": x})]))
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp.npy")
        np.save(tmp, np.stack(out).astype(np.float16))  # (frames, blocks, 197, 768)
        tmp.replace(dst)
    except Exception as exc:  # noqa: BLE001 - report and go on
        return f"{path}: {exc!r}"
    return None


def _load(items: list[Item], kind: str, block_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Token maps of one block for every frame, and each frame's item index."""
    maps, owner = [], []
    for i, it in enumerate(items):
        p = _key(Path(it.path), kind)
        if not p.exists():
            continue
        t = np.load(p, mmap_mode="r")[:, block_index]
        maps.append(np.asarray(t))
        owner += [i] * len(t)
    return np.concatenate(maps), np.asarray(owner)


class _Head:
    """Attention-pooled token logits (multiple-instance learning) on one block."""

    def __init__(self, width: int, seed: int = 0) -> None:
        import torch

        torch.manual_seed(seed)
        self.norm = torch.nn.LayerNorm(width)
        self.score = torch.nn.Linear(width, 1)
        self.attend = torch.nn.Linear(width, 1)
        self.params = [*self.norm.parameters(), *self.score.parameters(),
                       *self.attend.parameters()]

    def __call__(self, x):  # type: ignore[no-untyped-def]
        import torch

        h = self.norm(x.float())
        a = torch.softmax(self.attend(h)[..., 0], dim=-1)
        return (a * self.score(h)[..., 0]).sum(-1)

    def fit(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, epochs: int, wd: float) -> None:
        import torch

        xt = torch.from_numpy(x)
        yt = torch.tensor(y, dtype=torch.float32)
        wt = torch.tensor(w / w.mean(), dtype=torch.float32)
        opt = torch.optim.AdamW(self.params, lr=2e-3, weight_decay=wd)
        steps = epochs * ((len(x) + 127) // 128)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
        for _ in range(epochs):
            perm = torch.randperm(len(xt))
            for b in range(0, len(xt), 128):
                i = perm[b:b + 128]
                loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                    self(xt[i]), yt[i], reduction="none") * wt[i]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()

    def logits(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return np.concatenate([self(torch.from_numpy(x[b:b + 512])).numpy()
                                   for b in range(0, len(x), 512)])


def _per_item(z_frames: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    for i in np.unique(owner):
        out[i] = z_frames[owner == i].mean()
    return out


def _frame_weights(items: list[Item], owner: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """balanced_weights per item (class x media type x source), shared by its frames."""
    sub = [items[i] for i in idx]
    wi = balanced_weights([f"{it.is_ai}:{it.media_type}" for it in sub], [it.source for it in sub])
    by_item = dict(zip(idx.tolist(), wi, strict=True))
    counts = np.bincount(owner, minlength=len(items))
    return np.asarray([by_item[o] / counts[o] for o in owner])


def _report(name: str, items: list[Item], z: np.ndarray) -> str:
    return f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in report(items, z).items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    video_set_arguments(ap)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--embed-only", action="store_true")
    ap.add_argument("--engine-json", nargs="*", default=[],
                    help="--json-out files of bench/eval_clip_arithmetic.py for the never-seen "
                         "files (their semantic_clip scores are stacked with the token head)")
    args = ap.parse_args()

    train = load_manifests(args.train, args.media_root).items
    unseen = load_manifests(args.unseen, args.media_root).items if args.unseen else []
    jobs = ([(str(it.path), "laundered+masked", BLOCKS) for it in train]
            + [(str(it.path), "judged", BLOCKS) for it in unseen])
    print(f"{len(train)} training files, {len(unseen)} never-seen", flush=True)
    run_jobs(_encode, jobs, lambda j: _key(Path(j[0]), j[1]).exists(), args.workers,
             chunksize=4, every=200)
    if args.embed_only:
        return

    from antifake.training.features import FeatureExtractor

    fx = FeatureExtractor(Path("var"), max_frames=MAX_FRAMES)
    y = np.asarray([int(it.is_ai) for it in train])
    folds = _fold(train)
    # the class-token probe on the same single condition, out of fold
    zc = oof_logits(fx, train, ["clipm"], ["laundered+masked"], "laundered+masked", 0.1)
    print(_report("clipm class-token probe (laundered+masked only, L2 0.1)", train, zc))
    engine: dict[str, float] = {}
    for f in args.engine_json:
        for r in json.loads(Path(f).read_text()):
            p = (r.get("scores") or {}).get("semantic_clip")
            if p is not None:
                engine[str(Path(r["path"]).resolve())] = min(max(float(p), 1e-6), 1 - 1e-6)
    seen = [it for it in unseen if str(Path(it.path).resolve()) in engine
            and _key(Path(it.path), "judged").exists()]
    pu = np.asarray([engine[str(Path(it.path).resolve())] for it in seen])
    zcu = np.log(pu / (1 - pu))
    if engine:
        print(_report(f"never-seen ({len(seen)} files): engine semantic_clip", seen, zcu))

    for bi, block in enumerate(BLOCKS):
        x, owner = _load(train, "laundered+masked", bi)
        zt = np.full(len(train), np.nan)
        for k in range(K):
            tr_items = np.where(folds != k)[0]
            trf = np.isin(owner, tr_items)
            head = _Head(x.shape[-1])
            head.fit(x[trf], y[owner[trf]], _frame_weights(train, owner[trf], tr_items),
                     args.epochs, args.wd)
            te = ~trf
            zt_f = head.logits(x[te])
            zt[np.unique(owner[te])] = _per_item(zt_f, owner[te], len(train))[
                np.unique(owner[te])]
        print(_report(f"token head, block {block}", train, zt), flush=True)
        for wgt in (0.25, 0.5, 1.0):
            zs = zc / np.nanstd(zc) + wgt * zt / np.nanstd(zt)
            print(_report(f"  clipm + {wgt} x token head {block} (z-scored sum)", train, zs))
        if engine:
            head = _Head(x.shape[-1])
            head.fit(x, y[owner], _frame_weights(train, owner, np.arange(len(train))),
                     args.epochs, args.wd)
            xu, ou = _load(seen, "judged", bi)
            zu = _per_item(head.logits(xu), ou, len(seen))
            print(_report(f"never-seen: token head, block {block}", seen, zu))
            for wgt in (0.25, 0.5, 1.0):
                zs = zcu / np.nanstd(zc) + wgt * zu / np.nanstd(zt)
                print(_report(f"never-seen: engine semantic_clip + {wgt} x token head {block}",
                              seen, zs))
            del xu
        del x, owner


if __name__ == "__main__":
    main()
