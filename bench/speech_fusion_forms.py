"""Other forms of the speech clip fusion, judged on a run's out-of-fold component scores.

The shipped fusion is linear in the three components' held-out logits (CNN, Whisper probe,
Whisper head). This refits, four source-grouped folds (a source's fold from a CRC of its
name), the same class- and source-balanced logistic fusion with added terms: pairwise
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
from speech_all_sources import load_run  # noqa: E402

from antifake.training.metrics import roc_auc, sigmoid, tpr_at_fpr  # noqa: E402
from antifake.training.probe import fit_probe  # noqa: E402
from antifake.training.speech_model import operating_threshold  # noqa: E402
from antifake.training.speech_whisper import balanced_weights  # noqa: E402

COMPONENTS = ("cnn", "whisper_probe", "whisper_head")
FOLDS = 4


def design(x: np.ndarray, form: str) -> np.ndarray:
    """The fusion's inputs for ``form`` from the component logits ``x`` (files x 3)."""
    pairs = np.stack([x[:, 0] * x[:, 1], x[:, 0] * x[:, 2], x[:, 1] * x[:, 2]], axis=1)
    if form == "linear":
        return x
    if form == "products":
        return np.concatenate([x, pairs], axis=1)
    if form == "squares":
        return np.concatenate([x, x**2 / 10, pairs], axis=1)
    if form == "min-max":
        return np.concatenate([x, x.min(1, keepdims=True), x.max(1, keepdims=True)], axis=1)
    raise ValueError(form)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True, help="the run's evaluation.json")
    ap.add_argument("manifests", type=Path, nargs="+", help="every manifest of the run")
    args = ap.parse_args()
    run, y, src = load_run(args.run, args.manifests, args.media_root)
    comp = run["whisper"]["component_oof"]
    conds = list(comp["cnn"])
    fold = np.array([zlib.crc32(s.encode()) % FOLDS for s in src])
    print("| fusion | " + " | ".join(conds) + " |\n|---|" + "---|" * len(conds))
    for form in ("linear", "products", "squares", "min-max"):
        x = {c: design(np.stack([np.asarray(comp[n][c]) for n in COMPONENTS], 1), form)
             for c in conds}
        oof = {c: np.zeros(len(y)) for c in conds}
        flag = {c: np.zeros(len(y), bool) for c in conds}
        for f in range(FOLDS):
            train = fold != f
            xs = np.concatenate([x[c][train] for c in conds])
            ys = np.concatenate([y[train]] * len(conds)).astype(int)
            w = balanced_weights([str(v) for v in ys],
                                 list(np.concatenate([src[train]] * len(conds))))
            probe = fit_probe(xs, ys, w, l2=1e-3)
            for c in conds:
                oof[c][~train] = probe.logits(x[c][~train])[:, 0]
        for f in range(FOLDS):
            train = fold != f
            line = operating_threshold({c: sigmoid(oof[c][train & ~y]) for c in conds})
            for c in conds:
                flag[c][~train] = sigmoid(oof[c][~train]) >= line
        cells = []
        for c in conds:
            over = sum(1 for s in set(src[~y]) if flag[c][(src == s) & ~y].mean() > 0.05)
            cells.append(f"{roc_auc(y, oof[c]):.3f} / {tpr_at_fpr(y, oof[c], 0.05):.3f} / "
                         f"{flag[c][y].mean():.3f} / {100 * flag[c][~y].mean():.1f} % / {over}")
        print(f"| {form} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
