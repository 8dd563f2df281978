"""Fill the feature cache of the image/video families, one condition after another.

``antifake train`` / ``evaluate`` fill what they need themselves; this fills a chosen set of
families and conditions ahead of the exploration benches (``bench/explore_families.py``),
condition by condition so the first results can be read before the rest is done.
Usage (repo root, venv active)::

    PYTHONPATH=src python bench/fill_feature_cache.py --media-root var/corpus \\
        --manifest ../shared/corpus/manifest.tsv \\
        --manifest ../shared/corpus/extra-video-manifest.tsv \\
        --manifest ../shared/corpus/extra-image-manifest.tsv \\
        --family effl0e --family clipm --family clipp \\
        --condition laundered+masked --condition masked --condition debias+masked
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from antifake.training.data import load_manifests
from antifake.training.features import precompute_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", action="append", required=True)
    ap.add_argument("--media-root", action="append", default=[])
    ap.add_argument("--cache-dir", type=Path, default=Path("var"))
    ap.add_argument("--max-frames", type=int, default=4)
    ap.add_argument("--family", action="append", required=True)
    ap.add_argument("--condition", action="append", required=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    items = load_manifests(args.manifest, args.media_root).items
    print(f"{len(items)} files", flush=True)
    t0 = time.perf_counter()
    for cond in args.condition:
        errors = precompute_all(args.cache_dir, args.max_frames, args.family, [cond], items,
                                args.workers, log=lambda s: print(
                                    f"{time.perf_counter() - t0:.0f} s {s}", flush=True))
        print(f"{cond}: done at {time.perf_counter() - t0:.0f} s, {len(errors)} unreadable",
              *errors[:10], sep="\n", flush=True)


if __name__ == "__main__":
    main()
