"""What the CLIP encoder's arithmetic does to the verdicts a user gets.

The shipped int8 CLIP graph multiplies uint8 activations by int8 weights; on x86 CPUs
without VNNI onnxruntime's kernel for that saturates, and the features (hence
``semantic_clip`` and the fused verdict) depend on the CPU. Since the fix the encoder runs
a converted copy with exact products (:func:`antifake.clip_encoder.convert_model`). This
scores every file of the given manifests through the engine (``forensic_image`` +
``semantic_clip``, calibrated fusion, per-format lines) twice: with the exact encoder and
with the shipped arithmetic as this CPU computes it, and prints AUC (AI vs real, per media
type) and the share of files called ``ai_generated``, per label side and per source.
On a CPU with VNNI both columns agree. Usage (repo root, venv active)::

    PYTHONPATH=src python bench/eval_clip_arithmetic.py --media-root var/corpus \\
        data/manifests/commercial-generators.tsv data/manifests/open-video-generators.tsv \\
        data/manifests/real-video.tsv [--launder] [--max-frames 8]
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from antifake import clip_encoder
from antifake.config import AnalysisOptions, FrameSampling
from antifake.engine import Engine
from antifake.onnx_runtime import SessionCache
from antifake.training.data import load_manifests
from antifake.training.media_io import launder_file
from antifake.training.metrics import roc_auc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifests", nargs="+")
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--launder", action="store_true",
                    help="score the H.264 CRF 28 <= 720p / JPEG laundered copy of each file")
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--max-frames", type=int, default=None,
                    help="frames per video (default: the engine's, 2 per second up to 64)")
    args = ap.parse_args()
    items = load_manifests(args.manifests, args.media_root).items
    sampling = (FrameSampling() if args.max_frames is None
                else FrameSampling(max_frames=args.max_frames))
    engine = Engine(detectors=["forensic_image", "semantic_clip"], detector_threads=1,
                    options=AnalysisOptions(sampling=sampling))
    exact_sessions = clip_encoder._sessions
    with tempfile.TemporaryDirectory() as tmp:
        shipped = Path(tmp) / "clip_shipped_arithmetic.onnx"
        clip_encoder.convert_model(clip_encoder.model_path(), shipped, exact=False)
        modes = {"exact": exact_sessions, "shipped int8 on this CPU": SessionCache(
            lambda: shipped, spin=True)}
        rows: dict[str, list[tuple[float, str]]] = {m: [] for m in modes}
        for i, it in enumerate(items):
            path = launder_file(it.path, args.cache_dir) if args.launder else it.path
            for mode, sessions in modes.items():
                clip_encoder._sessions = sessions
                res = engine.analyze(path)
                rows[mode].append((float("nan") if res.ai_probability is None
                                   else res.ai_probability, str(res.verdict)))
            if (i + 1) % 50 == 0:
                print(f"{i + 1}/{len(items)}", flush=True)
    clip_encoder._sessions = exact_sessions
    y = np.asarray([it.is_ai for it in items])
    mt = np.asarray([it.media_type for it in items])
    print(f"\n{len(items)} files, {len({it.source for it in items})} sources"
          f"{' (laundered)' if args.launder else ' (as received)'}")
    print("| arithmetic | media | AUC (AI / real files, sources) | AI called ai_generated "
          "| real called ai_generated |")
    print("|---|---|---|---|---|")
    for mode, r in rows.items():
        p = np.asarray([a for a, _ in r])
        flagged = np.asarray([v == "ai_generated" for _, v in r])
        for m in ("video", "image"):
            sel = (mt == m) & np.isfinite(p)
            if not (y[sel].any() and (~y[sel]).any()):
                continue
            ns = {side: len({it.source for it, s in zip(items, sel, strict=True)
                             if s and it.is_ai == side}) for side in (True, False)}
            print(f"| {mode} | {m} | {roc_auc(y[sel], p[sel]):.3f} ({int(y[sel].sum())} "
                  f"/ {int((~y[sel]).sum())}, {ns[True]} + {ns[False]}) "
                  f"| {flagged[sel & y].mean():.1%} | {flagged[sel & ~y].mean():.1%} |")
    per_source: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for k, it in enumerate(items):
        if not it.is_ai:
            c = per_source[it.source]
            c[0] += 1
            c[1] += rows["exact"][k][1] == "ai_generated"
            c[2] += rows["shipped int8 on this CPU"][k][1] == "ai_generated"
    print("\nreal sources with a file called ai_generated (files: exact / shipped int8):")
    for src, (n, a, b) in sorted(per_source.items()):
        if a or b:
            print(f"  {src}: {n} files: {a} / {b}")


if __name__ == "__main__":
    main()
