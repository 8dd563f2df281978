"""Train only the final synthetic-speech CNN on every file of the given manifests.

`antifake train` runs the source folds first (their held-out real scores set the
threshold) and then the final model; on a 2-core CPU with 6,586 files the folds take about
two hours and the final model about half an hour. This trains the final model alone, so a
candidate can be judged on sources outside every manifest (`bench/compare_speech_models.py`,
AUC and detection at equal false-positive rates) while the folds still run; its
`ai_threshold` stays at the default 0.5 until `antifake train ... --speech-cnn
<this onnx> --reuse-oof <the folds' --json-out>` packages it with the out-of-fold line.

    PYTHONPATH=src python bench/train_speech_final.py --out var/speech-final-08 \\
        --media-root var/corpus <speech manifests>
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from antifake.training.speech_model import TrainConfig, run_speech_pipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--media-root", type=Path, default=Path("var/corpus"))
    ap.add_argument("--cache", type=Path, default=Path("var/cache/speech-waves"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--short-crop-p", type=float, default=0.0,
                    help="share of draws cut to 0.4-2 s and repeated (TrainConfig.short_crop_p)")
    ap.add_argument("manifests", nargs="+", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.perf_counter()
    run_speech_pipeline(args.manifests, args.media_root, args.cache, args.out, 4,
                        TrainConfig(epochs=args.epochs, short_crop_p=args.short_crop_p),
                        args.workers, evaluate=False)
    print(f"final model in {args.out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
