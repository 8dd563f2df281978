"""Other forms of the speech clip fusion, judged on a run's out-of-fold component scores.

The shipped fusion is linear in the three components' held-out logits (CNN, Whisper probe,
Whisper head). This refits, four source-grouped folds (a source's fold from a CRC of its
name), the shipped fusion (``speech_whisper.fit_fusion``) with added terms: pairwise
products, squares and products, or the components' min and max; each fold's line is fitted
like the shipped one on the other folds' real speech. Prints AUC / TPR at the 5 % line /
TPR / real FPR / real sources above 5 % at the nested lines, per codec condition.

    PYTHONPATH=src python bench/speech_fusion_forms.py --media-root var/corpus \\
        --run var/speech-model-all/evaluation.json -- <every manifest of the run>
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from speech_all_sources import load_run, real_sources_above  # noqa: E402

from antifake.training.metrics import roc_auc, sigmoid, tpr_at_fpr  # noqa: E402
from antifake.training.speech_model import operating_threshold  # noqa: E402
from antifake.training.speech_whisper import fit_fusion, fuse  # noqa: E402

COMPONENTS = ("cnn", "whisper_probe", "whisper_head")
FOLDS = 4


def design(x: dict[str, np.ndarray], form: str) -> dict[str, np.ndarray]:
    """The fusion's inputs (name -> logits) for ``form`` from the component logits ``x``."""
    a, b, c = (x[n] for n in COMPONENTS)
    pairs = {"cnn*probe": a * b, "cnn*head": a * c, "probe*head": b * c}
    if form == "linear":
        return x
    if form == "products":
        return {**x, **pairs}
    if form == "squares":
        return {**x, **{f"{n}^2/10": x[n] ** 2 / 10 for n in COMPONENTS}, **pairs}
    if form == "min-max":
        return {**x, "min": np.minimum(np.minimum(a, b), c), "max": np.maximum(np.maximum(a, b), c)}
    raise ValueError(form)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True, help="the run's evaluation.json")
    ap.add_argument("manifests", type=Path, nargs="+", help="every manifest of the run")
    args = ap.parse_args()
    run, items, y, src = load_run(args.run, args.manifests, args.media_root)
    comp = run["whisper"]["component_oof"]
    conds = list(comp["cnn"])
    fold = np.array([zlib.crc32(s.encode()) % FOLDS for s in src])
    print("| fusion | " + " | ".join(conds) + " |\n|---|" + "---|" * len(conds))
    for form in ("linear", "products", "squares", "min-max"):
        x = {c: design({n: np.asarray(comp[n][c]) for n in COMPONENTS}, form) for c in conds}
        oof = {c: np.zeros(len(y)) for c in conds}
        flag = {c: np.zeros(len(y), bool) for c in conds}
        for f in range(FOLDS):
            train = fold != f
            weights = fit_fusion([it for it, k in zip(items, train, strict=True) if k],
                                 {n: {c: x[c][n][train] for c in conds} for n in x[conds[0]]})
            for c in conds:
                oof[c][~train] = fuse({n: v[~train] for n, v in x[c].items()}, weights)
        for f in range(FOLDS):
            train = fold != f
            line = operating_threshold({c: sigmoid(oof[c][train & ~y]) for c in conds})
            for c in conds:
                flag[c][~train] = sigmoid(oof[c][~train]) >= line
        cells = []
        for c in conds:
            cells.append(f"{roc_auc(y, oof[c]):.3f} / {tpr_at_fpr(y, oof[c], 0.05):.3f} / "
                         f"{flag[c][y].mean():.3f} / {100 * flag[c][~y].mean():.1f} % / "
                         f"{real_sources_above(flag[c], src, ~y)}")
        print(f"| {form} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
