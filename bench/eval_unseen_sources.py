"""What the broad corpus buys: a model trained on the development corpus only, judged on
the sources it never saw, vs. the broad-corpus models judged out of fold.

Trains the probe of each feature family on ``manifest.tsv`` alone (16 sources; the recipe
of the models shipped before the broad corpus), sets its threshold at 5 % FPR on its own
real training files (as those models were calibrated), and scores every file of the extra
manifests (sources outside the development corpus) under ``laundered+masked``. Reads the
feature cache that ``antifake evaluate`` fills (run that first). Usage (repo root, venv)::

    PYTHONPATH=src python bench/eval_unseen_sources.py --media-root var/corpus \\
        ../shared/corpus/manifest.tsv ../shared/corpus/extra-video-manifest.tsv \\
        ../shared/corpus/extra-image-manifest.tsv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from antifake.training.data import load_manifests
from antifake.training.features import FeatureExtractor
from antifake.training.metrics import roc_auc
from antifake.training.operating import rate_rows, rates_markdown
from antifake.training.pipeline import fit_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dev_manifest", type=Path)
    ap.add_argument("extra_manifests", type=Path, nargs="+")
    ap.add_argument("--media-root", type=Path, action="append", default=[])
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--max-frames", type=int, default=2)
    ap.add_argument("--family", action="append", default=None)
    args = ap.parse_args()
    dev = load_manifests([args.dev_manifest], args.media_root).items
    dev_sha = {it.sha1 for it in dev}
    dev_sources = {it.source for it in dev}
    extra = [it for it in load_manifests(args.extra_manifests, args.media_root).items
             if it.sha1 not in dev_sha and it.source not in dev_sources]
    fx = FeatureExtractor(args.cache_dir, args.max_frames)
    print(f"dev corpus: {len(dev)} files, {len(dev_sources)} sources; unseen: {len(extra)} "
          f"files, {len({it.source for it in extra})} sources")
    for fam in args.family or ["effl0e", "clip_emb"]:
        model = fit_model(fx, fam, dev, ("masked", "laundered+masked"), attribution=False)
        thr = {}
        for mt in ("image", "video"):
            real = [model.clip_logit(fx.frames_features(fam, "masked", it))
                    for it in dev if it.media_type == mt and not it.is_ai]
            thr[mt] = float(np.quantile(real, 0.95))
        z = np.asarray([model.clip_logit(fx.frames_features(fam, "laundered+masked", it))
                        for it in extra])
        per_file = np.asarray([thr[it.media_type] for it in extra])
        print(f"\n### `{fam}` trained on the development corpus only, judged on unseen "
              "sources (laundered+masked)\n")
        for mt in ("video", "image"):
            sel = np.asarray([it.media_type == mt for it in extra])
            y = np.asarray([it.is_ai for it in extra])[sel]
            print(f"- {mt}: AUC {roc_auc(y, z[sel]):.3f}")
        print("\n" + rates_markdown(rate_rows(z, per_file, extra)))


if __name__ == "__main__":
    main()
