"""Weighted, L2-regularised logistic probes (binary and multinomial) fitted with L-BFGS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class LinearProbe:
    """``logits = ((x - mean) / scale) @ coef.T + intercept``; K=1 is binary."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (K, D)
    intercept: np.ndarray  # (K,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef.T + self.intercept

    def raw_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The same map on unstandardised features: ``x @ W.T + b``."""
        w = self.coef / self.scale
        b = self.intercept - (self.mean / self.scale) @ self.coef.T
        return w.astype(np.float32), b.astype(np.float32)


def fit_probe(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
              n_classes: int = 2, l2: float = 1e-2, max_iter: int = 200) -> LinearProbe:
    """Fit on rows ``x`` with integer labels ``y`` (binary when ``n_classes == 2``)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    xs = torch.as_tensor((x - mean) / scale, dtype=torch.float32)
    w = torch.as_tensor(np.ones(len(x)) if weights is None else weights, dtype=torch.float32)
    w = w / w.sum()
    k = 1 if n_classes == 2 else n_classes
    coef = torch.zeros(k, x.shape[1], requires_grad=True)
    bias = torch.zeros(k, requires_grad=True)
    yt = torch.as_tensor(y)
    opt = torch.optim.LBFGS([coef, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = xs @ coef.T + bias
        if k == 1:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                z[:, 0], yt.float(), reduction="none")
        else:
            loss = torch.nn.functional.cross_entropy(z, yt.long(), reduction="none")
        total = (loss * w).sum() + l2 * (coef**2).sum() / 2
        total.backward()
        return total

    opt.step(closure)
    return LinearProbe(mean, scale, coef.detach().numpy().astype(np.float64),
                       bias.detach().numpy().astype(np.float64))


def balanced_weights(classes: list[str], sources: list[str]) -> np.ndarray:
    """Each class has equal total weight, shared equally by its sources, then its rows."""
    classes_a, sources_a = np.asarray(classes), np.asarray(sources)
    out = np.zeros(len(classes))
    for c in np.unique(classes_a):
        in_c = classes_a == c
        srcs = np.unique(sources_a[in_c])
        for s in srcs:
            rows = in_c & (sources_a == s)
            out[rows] = 1.0 / len(srcs) / rows.sum()
    return out / out.sum() * len(out)
