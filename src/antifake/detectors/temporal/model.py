"""The per-pair scoring model: feature transform + logistic regression, stored as JSON.

Kept deliberately small (a few dozen weights) so it is auditable, trains in seconds on the
corpus and cannot memorise a source. :func:`expand` is shared by training and inference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from antifake.detectors.temporal.features import FEATURE_NAMES

# Heavy-tailed non-negative features are modelled on a log scale.
_LOG_FEATURES = {
    "warp_err_norm", "warp_err_hf_ratio", "fb_err", "fb_bad_frac", "flow_roughness",
    "div_std", "curl_std", "res_flicker", "res_energy_jump", "brightness_jump",
}
_LOG_EPS = 1e-3


def expanded_names(base: tuple[str, ...] = FEATURE_NAMES) -> list[str]:
    """Names of :func:`expand`'s columns: transformed features, then x motion terms."""
    names = [f"log_{n}" if n in _LOG_FEATURES else n for n in base]
    names += [f"{n}*log_motion" for n in names[1:]]
    return names


def expand(raw: np.ndarray) -> np.ndarray:
    """(n, F) raw features -> (n, 2F-1): log transforms plus interactions with motion.

    The interactions let a linear model judge e.g. warping error *relative to* the amount
    of motion, which is what separates physics from its imitation.
    """
    raw = np.atleast_2d(np.asarray(raw, dtype=np.float64))
    cols = []
    for i, n in enumerate(FEATURE_NAMES):
        x = raw[:, i]
        cols.append(np.log(np.maximum(x, 0.0) + _LOG_EPS) if n in _LOG_FEATURES else x)
    base = np.stack(cols, axis=1)
    motion = base[:, :1]
    return np.concatenate([base, base[:, 1:] * motion], axis=1)


@dataclass
class PairModel:
    """Standardise -> linear -> sigmoid, plus the reference statistics used in evidence."""

    feature_names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    meta: dict[str, Any]

    def logits(self, raw: np.ndarray) -> np.ndarray:
        """Per-pair log-odds of "AI-generated" for (n, F) raw features."""
        z = (expand(raw) - self.mean) / self.scale
        z = np.clip(z, -6.0, 6.0)  # one absurd feature must not dominate
        return np.asarray(z @ self.weights + self.bias, dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "antifake-temporal-logreg-v1",
            "feature_names": self.feature_names,
            "raw_features": list(FEATURE_NAMES),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairModel:
        if data.get("raw_features") != list(FEATURE_NAMES):
            raise ValueError("temporal model was trained on a different feature set")
        return cls(
            feature_names=list(data["feature_names"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            weights=np.asarray(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
            meta=dict(data.get("meta", {})),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")


MODEL_FILE = "model.json"


def load_packaged_model() -> PairModel:
    """The model shipped inside the package (trained by ``train.py``)."""
    text = resources.files("antifake.detectors.temporal").joinpath(MODEL_FILE).read_text("utf-8")
    return PairModel.from_json(json.loads(text))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 0.01, iters: int = 50
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Weighted L2 logistic regression by Newton's method on standardised features.

    Returns (mean, scale, weights, bias). ``l2`` is the ridge penalty on the weights
    (relative to the total sample weight, so it does not depend on the dataset size).
    """
    mean = np.average(x, axis=0, weights=w)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w)) + 1e-6
    z = np.clip((x - mean) / scale, -6.0, 6.0)
    a = np.concatenate([z, np.ones((len(z), 1))], axis=1)
    wn = w / w.sum()
    theta = np.zeros(a.shape[1])
    reg = np.full(a.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(a @ theta)))
        grad = a.T @ (wn * (p - y)) + reg * theta
        hess = (a * (wn * p * (1 - p))[:, None]).T @ a + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-7:
            break
    return mean, scale, theta[:-1], float(theta[-1])
