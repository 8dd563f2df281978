"""Detection metrics: ROC AUC, TPR at a fixed FPR on real media, accuracy at a threshold.

Implemented with numpy (ties counted as half, like the Mann-Whitney U statistic) so the
tooling needs no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve; ``nan`` when one class is missing.

    Equals P(score of a random positive > score of a random negative), ties counting 1/2.
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order), dtype=np.float64)
    allv = np.concatenate([pos, neg])[order]
    # Average ranks over ties.
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def threshold_at_fpr(real_scores: Sequence[float] | np.ndarray, fpr: float) -> float:
    """A threshold t such that at most ``fpr`` of the real scores are strictly above t.

    A file is called AI when ``score > t`` (used by :func:`tpr_at_fpr`).
    """
    r = np.sort(np.asarray(real_scores, dtype=np.float64))
    if len(r) == 0:
        return float("nan")
    allowed = int(np.floor(fpr * len(r)))  # real files we may flag
    return float(r[len(r) - 1 - allowed]) if allowed < len(r) else float(r[0]) - 1e-9


def tpr_at_fpr(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, fpr: float
) -> float:
    """Fraction of AI files flagged at the threshold that flags at most ``fpr`` of reals."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if not y.any() or y.all():
        return float("nan")
    t = threshold_at_fpr(s[~y], fpr)
    return float(np.mean(s[y] > t))


def rates_at_threshold(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float
) -> dict[str, float]:
    """Accuracy, TPR and FPR when ``score >= threshold`` means AI."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    pred = s >= threshold
    return {
        "accuracy": float(np.mean(pred == y)) if len(y) else float("nan"),
        "tpr": float(np.mean(pred[y])) if y.any() else float("nan"),
        "fpr": float(np.mean(pred[~y])) if (~y).any() else float("nan"),
    }


def sigmoid(z: Sequence[float] | np.ndarray) -> np.ndarray:
    """Logits -> probabilities (float64)."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64))))
