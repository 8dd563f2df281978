"""What the CLIP encoder's arithmetic does to the verdicts a user gets.

The shipped int8 CLIP graph multiplies uint8 activations by int8 weights; on x86 CPUs
without VNNI onnxruntime's kernel for that saturates, and the features (hence
``semantic_clip`` and the fused verdict) depend on the CPU. Since the fix the encoder runs
a converted copy with exact products (:func:`antifake.clip_encoder.convert_model`). Each
mode compares the two arithmetics, the exact encoder and the shipped graph as this CPU
computes it (:func:`antifake.clip_encoder.model_override`); on a CPU with VNNI both agree.

* ``--mode engine`` (default): every file of the manifests through the engine
  (``forensic_image`` + ``semantic_clip``, calibrated fusion, per-format lines); AUC (AI vs
  real, per media type) and the share of files called ``ai_generated``, per label side and
  per real source.
* ``--mode probe``: the shipped ``semantic_clip`` probe alone, its logit averaged over
  ``--max-frames`` (default 2) frames of each file under ``--condition`` (default
  ``masked``); AUC per media type.
* ``--mode timing``: median milliseconds of one CLIP forward (random 224x224 input,
  ``--threads``), ``--runs`` times per arithmetic, after one warm-up run.

``--refuse CALIBRATION`` (engine mode) also fuses the exact arithmetic's detector
results with another ``calibration.json`` - a candidate fusion judged on the same
detector scores, in the same run; ``--json-out`` keeps every file's detector scores,
format groups and verdict.

``--sample N`` scores N files drawn with ``random.Random(--seed).sample``. Usage (repo
root, venv active)::

    PYTHONPATH=src python bench/eval_clip_arithmetic.py --media-root var/corpus \\
        data/manifests/commercial-generators.tsv data/manifests/open-video-generators.tsv \\
        data/manifests/real-video.tsv [--launder] [--max-frames 8]
    PYTHONPATH=src python bench/eval_clip_arithmetic.py --mode probe --sample 160 \\
        --media-root var/corpus ../shared/corpus/extra-video-manifest.tsv \\
        ../shared/corpus/extra-image-manifest.tsv
    PYTHONPATH=src python bench/eval_clip_arithmetic.py --mode timing --runs 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from antifake import clip_encoder
from antifake.calibration import CalibratedFusion
from antifake.config import AnalysisOptions, FrameSampling
from antifake.detectors.semantic_clip.detector import frame_logits
from antifake.engine import Engine
from antifake.training.data import Item, load_manifests
from antifake.training.media_io import frames_for_condition, judged_copy
from antifake.training.metrics import roc_auc

EXACT, SHIPPED = "exact", "shipped int8 on this CPU"


@contextlib.contextmanager
def arithmetics(which: str = "both"
                ) -> Iterator[dict[str, Callable[[], contextlib.AbstractContextManager[None]]]]:
    """``{name: context manager factory}`` selecting each arithmetic for the encoder.

    ``which``: ``both``, ``exact`` (the engine as shipped now) or ``shipped``.
    """
    if which == "exact":
        yield {EXACT: contextlib.nullcontext}
        return
    with tempfile.TemporaryDirectory() as tmp:
        shipped = Path(tmp) / "clip_shipped_arithmetic.onnx"
        # exact=False: the shipped weights, only the block outputs declared
        clip_encoder.convert_model(clip_encoder.model_path(), shipped, exact=False)
        # The converted copy named explicitly: the engine's own sessions run the shipped
        # arithmetic where it is checked exact (clip_encoder.encoder_model_path).
        modes: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
            EXACT: lambda: clip_encoder.model_override(clip_encoder.exact_model_path()),
            SHIPPED: lambda: clip_encoder.model_override(shipped)}
        yield modes if which == "both" else {SHIPPED: modes[SHIPPED]}


def auc_line(items: list[Item], scores: np.ndarray, media: str) -> str | None:
    """``AUC (n AI / n real files, AI + real sources)`` over the files of one media type."""
    y = np.asarray([it.is_ai for it in items])
    sel = np.asarray([it.media_type == media for it in items]) & np.isfinite(scores)
    if not (y[sel].any() and (~y[sel]).any()):
        return None
    ns = {side: len({it.source for it, s in zip(items, sel, strict=True)
                     if s and it.is_ai == side}) for side in (True, False)}
    return (f"{roc_auc(y[sel], scores[sel]):.3f} ({int(y[sel].sum())} / "
            f"{int((~y[sel]).sum())}, {ns[True]} + {ns[False]})")


def run_timing(runs: int, threads: int) -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    print(f"| arithmetic | CLIP forward, median ms ({runs} runs, {threads} threads) |")
    print("|---|---|")
    with arithmetics() as modes:
        for mode, use in modes.items():
            with use():
                sess = clip_encoder.session(threads)
                sess.run(None, {"pixel_values": x})  # warm-up: allocation, spinning
                ms = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    sess.run(None, {"pixel_values": x})
                    ms.append(1000 * (time.perf_counter() - t0))
            print(f"| {mode} | {statistics.median(ms):.1f} |")


def run_probe(items: list[Item], condition: str, max_frames: int, cache_dir: Path) -> None:
    scores: dict[str, list[float]] = {EXACT: [], SHIPPED: []}
    with arithmetics() as modes:
        for i, it in enumerate(items):
            frames = frames_for_condition(it.path, condition, cache_dir, max_frames)
            for mode, use in modes.items():
                with use():
                    scores[mode].append(float(frame_logits(frames).mean())
                                        if frames else float("nan"))
            if (i + 1) % 50 == 0:
                print(f"{i + 1}/{len(items)}", flush=True)
    print(f"\n{len(items)} files, {len({it.source for it in items})} sources, condition "
          f"{condition}, {max_frames} frames per video; shipped semantic_clip probe")
    print("| arithmetic | media | AUC (AI / real files, AI + real sources) |")
    print("|---|---|---|")
    for mode, sc in scores.items():
        for media in ("video", "image"):
            line = auc_line(items, np.asarray(sc), media)
            if line:
                print(f"| {mode} | {media} | {line} |")
    diff = np.abs(np.asarray(scores[EXACT]) - np.asarray(scores[SHIPPED]))
    print(f"\nfiles whose mean logit differs between the arithmetics: "
          f"{int((diff > 0).sum())} of {len(items)} (largest difference {np.nanmax(diff):.3g})")


def run_engine(items: list[Item], launder: bool, max_frames: int | None,
               cache_dir: Path, which: str = "both",
               refuse: Sequence[Path] = (), json_out: Path | None = None) -> None:
    """Score ``items`` through the engine; with ``refuse``, also fuse each file's detector
    results with those calibration files (rows named after each file), which is exact
    where only the fusion differs (the detectors' own models the same)."""
    sampling = FrameSampling() if max_frames is None else FrameSampling(max_frames=max_frames)
    engine = Engine(detectors=["forensic_image", "semantic_clip"], detector_threads=1,
                    options=AnalysisOptions(sampling=sampling))
    others = {str(c): CalibratedFusion.load(c) for c in refuse}
    rows: dict[str, list[tuple[float, str]]] = defaultdict(list)
    per_file: list[dict[str, object]] = []
    with arithmetics(which) as modes:
        for i, it in enumerate(items):
            path = judged_copy(it.path, cache_dir) if launder else it.path
            for mode, use in modes.items():
                with use():
                    res = engine.analyze(path)
                rows[mode].append((float("nan") if res.ai_probability is None
                                   else res.ai_probability, str(res.verdict)))
                groups = list((res.fusion or {}).get("format_groups", []))
                media_type = (res.fusion or {}).get("media_type")
                per_file.append({
                    "path": str(it.path), "source": it.source, "label": it.label,
                    "is_ai": it.is_ai, "media_type": it.media_type, "arithmetic": mode,
                    "format_groups": groups, "verdict": str(res.verdict),
                    "ai_probability": res.ai_probability,
                    "scores": {d.detector: d.score for d in res.detectors},
                    "generator": res.generator.to_dict() if res.generator else None})
                if mode != EXACT:
                    continue
                for name, fusion in others.items():
                    fused = fusion.fuse(res.detectors, media_type=media_type, formats=groups)
                    rows[f"exact, {name}"].append((fused.ai_probability, str(fused.verdict)))
            if (i + 1) % 50 == 0:
                print(f"{i + 1}/{len(items)}", flush=True)
    if json_out is not None:
        json_out.write_text(json.dumps(per_file, indent=1), "utf-8")
    y = np.asarray([it.is_ai for it in items])
    mt = np.asarray([it.media_type for it in items])
    print(f"\n{len(items)} files, {len({it.source for it in items})} sources"
          f"{' (laundered + logo corner masked)' if launder else ' (as received)'}")
    print("| arithmetic | media | AUC (AI / real files, AI + real sources) "
          "| AI called ai_generated | real called ai_generated |")
    print("|---|---|---|---|---|")
    for mode, r in rows.items():
        p = np.asarray([a for a, _ in r])
        flagged = np.asarray([v == "ai_generated" for _, v in r])
        for m in ("video", "image"):
            line = auc_line(items, p, m)
            if line is None:
                continue
            sel = mt == m
            print(f"| {mode} | {m} | {line} | {flagged[sel & y].mean():.1%} "
                  f"| {flagged[sel & ~y].mean():.1%} |")
    names = list(rows)
    print(f"\nper label: files (sources), called ai_generated ({' / '.join(names)})")
    by_label: dict[str, list[int]] = defaultdict(list)
    for k, it in enumerate(items):
        by_label[it.label].append(k)
    for label, ks in sorted(by_label.items()):
        n_src = len({items[k].source for k in ks})
        called = " / ".join(str(sum(rows[m][k][1] == "ai_generated" for k in ks)) for m in names)
        print(f"  {label}: {len(ks)} ({n_src}): {called}")
    per_source: dict[str, list[int]] = defaultdict(lambda: [0] * (1 + len(names)))
    for k, it in enumerate(items):
        if not it.is_ai:
            c = per_source[it.source]
            c[0] += 1
            for j, m in enumerate(names):
                c[1 + j] += rows[m][k][1] == "ai_generated"
    print(f"\nreal sources with a file called ai_generated (files: {' / '.join(names)}):")
    for src, (n, *called_by) in sorted(per_source.items()):
        if any(called_by):
            print(f"  {src}: {n} files: {' / '.join(map(str, called_by))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifests", nargs="*")
    ap.add_argument("--mode", choices=("engine", "probe", "timing"), default="engine")
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--launder", action="store_true",
                    help="engine mode: score a logo-masked H.264 CRF 28 <= 720p (video) or "
                         "JPEG q90 <= 720p (image) copy (media_io.judged_copy)")
    ap.add_argument("--condition", default="masked", help="probe mode: media_io condition")
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--max-frames", type=int, default=None,
                    help="frames per video (engine default: 2 per second up to 64; probe: 2)")
    ap.add_argument("--sample", type=int, default=None, help="score N files drawn at random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=30, help="timing mode: forwards per arithmetic")
    ap.add_argument("--threads", type=int, default=2, help="timing mode: session threads")
    ap.add_argument("--arithmetic", choices=("both", "exact", "shipped"), default="both",
                    help="engine mode: which encoder arithmetic(s) to run")
    ap.add_argument("--refuse", type=Path, action="append", default=[],
                    help="engine mode: also fuse the exact arithmetic's detector results "
                         "with this calibration.json (repeatable; a candidate fusion whose "
                         "detectors are unchanged)")
    ap.add_argument("--json-out", type=Path, default=None,
                    help="engine mode: write every file's detector scores, format groups "
                         "and verdict here")
    args = ap.parse_args()
    if args.mode == "timing":
        run_timing(args.runs, args.threads)
        return
    if not args.manifests:
        ap.error("give one or more manifests")
    items = load_manifests(args.manifests, args.media_root).items
    if args.sample is not None and args.sample < len(items):
        items = random.Random(args.seed).sample(items, args.sample)
    if args.mode == "probe":
        run_probe(items, args.condition, args.max_frames or 2, args.cache_dir)
    else:
        run_engine(items, args.launder, args.max_frames, args.cache_dir, args.arithmetic,
                   args.refuse, args.json_out)


if __name__ == "__main__":
    main()
