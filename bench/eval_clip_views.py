"""Which views of a frame should ``semantic_clip`` score? Measured on unseen sources.

The shipped detector scores one view per frame: short side to 224 px, centre crop, which
for a 16:9 video drops the outer 44 % of the picture. This bench scores the same frames
(decoded as the engine does, ``--max-frames`` per video) through the shipped probe under
several views and reports, per view, AUC of AI vs real and the share of AI files above the
line that flags ``--fpr`` of the real files (pooled over the files given: an in-sample
line, for comparing views on the same files, not an operating point):

* ``centre``: the shipped view;
* ``thirds``: the mean logit of three square crops along the long side (start, centre,
  end), so the whole picture is seen;
* ``flip``: the mean logit of the centre crop and its mirror image;
* ``thirds+flip``: both.

Every file can be handed over as an outside evaluation does (``--launder``:
:func:`antifake.training.media_io.judged_copy`). Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_clip_views.py --launder --max-frames 8 \\
        --media-root var/corpus data/manifests/commercial-generators.tsv \\
        data/manifests/open-video-generators.tsv data/manifests/real-video.tsv
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from antifake.config import FrameSampling
from antifake.detectors.semantic_clip.detector import frame_logits
from antifake.media import open_media
from antifake.training.data import Item, load_manifests
from antifake.training.media_io import judged_copy
from antifake.training.metrics import roc_auc, tpr_at_fpr

VIEWS = ("centre", "thirds", "flip", "thirds+flip")


def square_crops(rgb: np.ndarray) -> list[np.ndarray]:
    """Three square crops of side = the short side: start, centre and end of the long side."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    offsets = sorted({0, (max(h, w) - side) // 2, max(h, w) - side})
    if w >= h:
        return [rgb[:, o:o + side] for o in offsets]
    return [rgb[o:o + side, :] for o in offsets]


def _oblong(frames: list[np.ndarray]) -> bool:
    h, w = frames[0].shape[:2]
    return max(h, w) - min(h, w) >= 16  # square-ish frames: the end crops are the centre


def view_logits(frames: list[np.ndarray], threads: int) -> dict[str, float]:
    """The file's mean probe logit under each view of :data:`VIEWS`."""
    centre = frame_logits(frames, threads)
    # The centre crop is (nearly: crop then resize vs resize then crop) the shipped view:
    # reuse its logits and encode only the two end crops.
    ends = [c for f in frames for c in square_crops(f)[::2]] if _oblong(frames) else []
    per_crop = np.concatenate([centre, frame_logits(ends, threads)]) if ends else centre
    mirrored = frame_logits([np.ascontiguousarray(f[:, ::-1]) for f in frames], threads)
    thirds = float(per_crop.mean())
    flip = float((centre.mean() + mirrored.mean()) / 2)
    both = float((per_crop.sum() + mirrored.sum()) / (len(per_crop) + len(mirrored)))
    return {"centre": float(centre.mean()), "thirds": thirds, "flip": flip,
            "thirds+flip": both}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifests", nargs="+")
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--launder", action="store_true")
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--max-frames", type=int, default=8)
    ap.add_argument("--fpr", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--media", choices=("video", "image", "both"), default="both")
    args = ap.parse_args()
    items: list[Item] = [it for it in load_manifests(args.manifests, args.media_root).items
                         if args.media in ("both", it.media_type)]
    scores: dict[str, list[float]] = defaultdict(list)
    kept: list[Item] = []
    sampling = FrameSampling(max_frames=args.max_frames)
    for i, it in enumerate(items):
        path = judged_copy(it.path, args.cache_dir) if args.launder else it.path
        try:
            frames = [f.rgb for f in open_media(path).frames(sampling)]
        except Exception as exc:  # noqa: BLE001 - report the file, keep measuring
            print(f"skipped {it.path}: {type(exc).__name__}: {exc}")
            continue
        if not frames:
            continue
        for view, z in view_logits(frames, args.threads).items():
            scores[view].append(z)
        kept.append(it)
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(items)}", flush=True)
    y = np.asarray([it.is_ai for it in kept])
    mt = np.asarray([it.media_type for it in kept])
    for media in ("video", "image"):
        sel = mt == media
        if not (y[sel].any() and (~y[sel]).any()):
            continue
        n_src = {side: len({it.source for it, s in zip(kept, sel, strict=True)
                            if s and it.is_ai == side}) for side in (True, False)}
        print(f"\n{media}: {int(y[sel].sum())} AI files ({n_src[True]} sources), "
              f"{int((~y[sel]).sum())} real ({n_src[False]} sources)"
              f"{', laundered + masked' if args.launder else ''}")
        print(f"| view | AUC | AI above the in-sample {args.fpr:.0%} real line |")
        print("|---|---|---|")
        for view in VIEWS:
            s = np.asarray(scores[view])[sel]
            print(f"| {view} | {roc_auc(y[sel], s):.3f} | {tpr_at_fpr(y[sel], s, args.fpr):.3f} |")
        by_label: dict[str, list[int]] = defaultdict(list)
        for k in np.flatnonzero(sel & y):
            by_label[kept[k].label].append(int(k))
        real = np.flatnonzero(sel & ~y)
        print("\nper AI label, AUC against the real files: " + " / ".join(VIEWS))
        for label, ks in sorted(by_label.items()):
            idx = np.concatenate([ks, real])
            yy = np.asarray([True] * len(ks) + [False] * len(real))
            aucs = " / ".join(f"{roc_auc(yy, np.asarray(scores[v])[idx]):.3f}" for v in VIEWS)
            print(f"  {label} ({len(ks)}): {aucs}")


if __name__ == "__main__":
    main()
