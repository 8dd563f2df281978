"""Calibrated fusion: a logistic model over detector scores, fitted on out-of-fold scores.

:class:`CalibratedFusion` follows the :class:`antifake.fusion.Fusion` protocol. For each
*calibrated* detector ``d`` (the forensic ones the model was fitted on) it uses
``x_d = logit(score_d)`` (clipped like EvidenceFusion), ``0`` when the detector is missing,
failed or has no opinion (neutral), and computes ``z = intercept + sum_d coef_d * x_d``.

Detectors outside the fit are independent evidence: a non-decisive provenance opinion (a
metadata signature, a watermark, an untrusted C2PA claim: there is no out-of-fold provenance
data, the corpus is stripped) or a plugin detector added after the fit adds its log-odds to
``z`` exactly as in :class:`antifake.fusion.EvidenceFusion`, until a refit gives it a
coefficient. Detectors listed in ``ignore`` are deliberately kept out of the verdict (e.g.
``splicing``, a localisation aid whose score is not calibrated as a probability); their
heatmaps and evidence are still reported. Decisive results (a valid C2PA AI declaration)
override everything. ``p = sigmoid(z)``.

Operating thresholds are set per media type (``image``/``video``) at a target false
positive rate on real media of that type, because image and video scores are not on the
same scale; ``ai_threshold``/``authentic_threshold`` are the fallbacks for other types.

The parameters live in a small JSON shipped in the package (``calibration.json``); they are
refitted with :func:`fit_calibrated_fusion` (or :func:`refit_from_tsv` on a table of
out-of-fold scores, one column per detector), so adding a detector only needs a new column
and a refit - no code change.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from antifake.fusion import (
    EvidenceFusion,
    FusedVerdict,
    _logit,
    _sigmoid,
    decisive_override,
    verdict_for,
)
from antifake.results import DetectorResult

CALIBRATION_FILE = "calibration.json"


@dataclass
class CalibratedFusion:
    """Logistic fusion of detector logits (see module docstring)."""

    coef: dict[str, float] = field(default_factory=dict)
    intercept: float = 0.0
    ai_threshold: float = 0.5
    authentic_threshold: float = 0.2
    name: str = "calibrated-logistic-v1"
    meta: dict[str, Any] = field(default_factory=dict)
    # Per media type operating points; a type not listed uses the two fields above.
    ai_thresholds: dict[str, float] = field(default_factory=dict)
    authentic_thresholds: dict[str, float] = field(default_factory=dict)
    # Per media type and format group (GIF, JPEG, "<=256 px"...: the groups of
    # antifake.training.formats), stricter lines where real files of that format score
    # higher; a file is held to the strictest line among its media type's and its groups'.
    ai_thresholds_by_format: dict[str, dict[str, float]] = field(default_factory=dict)
    # Detectors whose scores never enter the verdict (reported only).
    ignore: list[str] = field(default_factory=list)
    # Per media type, more such detectors: e.g. synthetic_speech on a video's sound track,
    # until out-of-fold data of videos with sound shows that it helps the video verdict.
    ignore_by_media_type: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> CalibratedFusion:
        """From ``path``, or the calibration shipped in the package."""
        if path is None:
            from antifake import models

            text = models.read_text("antifake", CALIBRATION_FILE)
        else:
            text = Path(path).read_text("utf-8")
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibratedFusion:
        return cls(coef={k: float(v) for k, v in d["coef"].items()},
                   intercept=float(d["intercept"]), ai_threshold=float(d["ai_threshold"]),
                   authentic_threshold=float(d["authentic_threshold"]),
                   name=str(d.get("name", "calibrated-logistic-v1")),
                   meta=dict(d.get("meta", {})),
                   ai_thresholds={k: float(v) for k, v in d.get("ai_thresholds", {}).items()},
                   authentic_thresholds={
                       k: float(v) for k, v in d.get("authentic_thresholds", {}).items()
                   },
                   ai_thresholds_by_format={
                       str(mt): {str(g): float(v) for g, v in by.items()}
                       for mt, by in d.get("ai_thresholds_by_format", {}).items()},
                   ignore=[str(x) for x in d.get("ignore", [])],
                   ignore_by_media_type={
                       str(k): [str(x) for x in v]
                       for k, v in d.get("ignore_by_media_type", {}).items()})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "coef": self.coef, "intercept": self.intercept,
                "ai_threshold": self.ai_threshold,
                "authentic_threshold": self.authentic_threshold,
                "ai_thresholds": self.ai_thresholds,
                "authentic_thresholds": self.authentic_thresholds,
                "ai_thresholds_by_format": self.ai_thresholds_by_format, "ignore": self.ignore,
                "ignore_by_media_type": self.ignore_by_media_type, "meta": self.meta}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", "utf-8")

    def log_odds(self, scores: Mapping[str, float | None]) -> float:
        """The model's log-odds from detector name -> score (missing/None = neutral)."""
        z = self.intercept
        for det, c in self.coef.items():
            s = scores.get(det)
            if s is not None and not math.isnan(s):
                z += c * _logit(s)
        return z

    def probability(self, scores: Mapping[str, float | None]) -> float:
        """Calibrated P(AI) from detector name -> score (missing/None = neutral)."""
        return _sigmoid(self.log_odds(scores))

    def thresholds(self, media_type: str | None,
                   formats: Sequence[str] = ()) -> tuple[float, float]:
        """(ai_threshold, authentic_threshold) for a media type and the file's format
        groups (``formats``: e.g. ``["GIF", "<=256 px"]``; none known: the media type's
        pooled line)."""
        key = media_type or ""
        ai = self.ai_thresholds.get(key, self.ai_threshold)
        by_format = self.ai_thresholds_by_format.get(key, {})
        ai = max([ai, *(by_format[g] for g in formats if g in by_format)])
        return ai, self.authentic_thresholds.get(key, self.authentic_threshold)

    def fuse(
        self, results: list[DetectorResult], media_type: str | None = None,
        formats: Sequence[str] = (),
    ) -> FusedVerdict:
        usable = [r for r in results if r.error is None and r.score is not None]
        override = decisive_override(usable)
        ignored = set(self.ignore) | set(self.ignore_by_media_type.get(media_type or "", []))
        known = {r.detector: r.score for r in usable if r.detector in self.coef}
        extra = [r for r in usable if r.detector not in self.coef and r.detector not in ignored]
        contributions = {d: self.coef[d] * _logit(float(sc)) for d, sc in known.items()
                         if sc is not None}
        contributions.update({r.detector: _logit(r.score or 0.5) for r in extra})
        if override:
            p, basis = override
        elif known or extra:
            # No calibrated detector spoke -> start from even odds, not the base rate.
            # The sum of the contributions, in log_odds' order (bit-identical to it).
            z = self.intercept if known else 0.0
            for det in self.coef:
                if det in known:
                    z += contributions[det]
            z += sum(contributions[r.detector] for r in extra)
            p = _sigmoid(z)
            basis = "+".join((["calibrated"] if known else []) + (["evidence"] if extra else []))
        else:
            p, basis = 0.5, "no-evidence"
        ai_thr, auth_thr = self.thresholds(media_type, formats)
        verdict = verdict_for(p, ai_thr, auth_thr)
        return FusedVerdict(
            verdict=verdict,
            ai_probability=p,
            generator=(EvidenceFusion._attribute([r for r in usable if r.detector not in ignored])
                       if verdict != "authentic" else None),
            details={"method": self.name, "basis": basis, "ai_threshold": ai_thr,
                     "authentic_threshold": auth_thr, "media_type": media_type,
                     "format_groups": list(formats),
                     "opinions": len(usable),
                     "calibrated_detectors": sorted(self.coef),
                     "evidence_detectors": sorted(r.detector for r in extra),
                     "ignored_detectors": sorted(ignored),
                     "contributions": {k: round(v, 4) for k, v in contributions.items()}},
        )


def thresholds_by_group(p: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                        strata: Sequence[str] | None, fpr: float) -> dict[str, float]:
    """Per group, the smallest threshold keeping the real FPR <= ``fpr`` within every
    stratum (the strictest stratum decides); groups without real rows are left out."""
    y = np.asarray(labels)
    g = np.asarray(groups)
    st = np.asarray(strata if strata is not None else ["all"] * len(y))
    out: dict[str, float] = {}
    for gv in np.unique(g):
        points = [_threshold_for_fpr(p[(g == gv) & (y == 0) & (st == sv)], fpr)
                  for sv in np.unique(st) if ((g == gv) & (y == 0) & (st == sv)).any()]
        if points:
            out[str(gv)] = max(points)
    return out


def _threshold_for_fpr(p_real: np.ndarray, fpr: float) -> float:
    """Smallest threshold t (``p >= t`` is AI) keeping the real FPR <= ``fpr``."""
    r = np.sort(p_real)[::-1]
    k = int(math.floor(fpr * len(r)))  # real files that may be flagged
    if k >= len(r):
        return 0.0
    return float(np.nextafter(r[k], 1.0))


def fit_calibrated_fusion(
    scores: Sequence[Mapping[str, float | None]],
    labels: Sequence[int],
    detectors: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    target_fpr: float = 0.05,
    authentic_fpr_tpr: float = 0.05,
    l2: float = 1e-3,
    strata: Sequence[str] | None = None,
) -> CalibratedFusion:
    """Fit the logistic fusion on held-out (out-of-fold) detector scores.

    ``scores``: one mapping detector -> score (or None) per file; ``labels``: 1 = AI.
    ``groups`` (e.g. media type) are given equal weight, and ``ai_threshold`` is the
    smallest probability keeping the FPR on real files <= ``target_fpr`` within *every*
    group. With ``strata`` (e.g. the evaluation condition of each row: as published vs
    laundered copies), each group's point must also hold within every stratum - the
    strictest one decides, so re-encoded media do not get a higher false-positive rate.
    ``authentic_threshold`` is the largest probability below which at most
    ``authentic_fpr_tpr`` of the AI files fall.
    """
    dets = sorted(detectors or {k for row in scores for k in row})
    x = np.zeros((len(scores), len(dets)))
    for i, row in enumerate(scores):
        for j, d in enumerate(dets):
            s = row.get(d)
            x[i, j] = 0.0 if s is None or math.isnan(s) else _logit(float(s))
    y = np.asarray(labels, dtype=np.float64)
    g = np.asarray(groups if groups is not None else ["all"] * len(y))
    w = np.zeros(len(y))
    for gv in np.unique(g):
        for cls in (0, 1):
            sel = (g == gv) & (y == cls)
            if sel.any():
                w[sel] = 1.0 / sel.sum()
    w = w / w.sum()
    coef = np.zeros(len(dets))
    b = 0.0
    # Newton iterations (tiny, well-conditioned problem).
    for _ in range(50):
        z = x @ coef + b
        p = 1 / (1 + np.exp(-z))
        grad_w = x.T @ (w * (p - y)) + l2 * coef
        grad_b = float(np.sum(w * (p - y)))
        s = w * p * (1 - p)
        xa = np.hstack([x, np.ones((len(y), 1))])
        h = xa.T @ (xa * s[:, None]) + np.diag([l2] * len(dets) + [1e-9])
        step = np.linalg.solve(h, np.append(grad_w, grad_b))
        coef -= step[:-1]
        b -= step[-1]
        if np.abs(step).max() < 1e-8:
            break
    p = 1 / (1 + np.exp(-(x @ coef + b)))

    def authentic_point(p_ai: np.ndarray, ceiling: float) -> float:
        p_ai = np.sort(p_ai)
        auth = float(p_ai[int(math.floor(authentic_fpr_tpr * len(p_ai)))]) if len(p_ai) else 0.2
        return min(auth, ceiling)

    ai_by_group = thresholds_by_group(p, y, g, strata, target_fpr)
    # Fallback for media types without their own point: the strictest of the groups.
    thr = max(ai_by_group.values())
    auth = authentic_point(p[y == 1], thr)
    # "authentic" needs strong evidence: a group with few AI examples (a handful of AI
    # images) would otherwise put its point far too high, so no group goes above the
    # point computed over all AI files.
    auth_by_group = {
        str(gv): min(auth, authentic_point(p[(g == gv) & (y == 1)], ai_by_group[str(gv)]))
        for gv in ai_by_group
    }
    return CalibratedFusion(
        coef={d: float(c) for d, c in zip(dets, coef, strict=True)}, intercept=float(b),
        ai_threshold=float(thr), authentic_threshold=float(auth),
        ai_thresholds=ai_by_group if len(ai_by_group) > 1 else {},
        authentic_thresholds=auth_by_group if len(auth_by_group) > 1 else {},
        meta={"n_files": len(y), "n_ai": int(y.sum()), "target_real_fpr": target_fpr,
              "groups": sorted(set(g.tolist()))},
    )


def refit_from_tsv(path: str | Path, out: str | Path | None = None,
                   target_fpr: float = 0.05) -> CalibratedFusion:
    """Refit from a TSV of out-of-fold scores and optionally save the JSON.

    Columns: ``is_ai`` (0/1), optional ``group`` (e.g. media type) and ``condition`` (the
    operating points must hold within each), then one column per detector holding its
    out-of-fold score (empty = no opinion). ``antifake train``
    writes such a file (``oof_scores.tsv``); other detectors add their columns.
    """
    rows, labels, groups, conditions = [], [], [], []
    with Path(path).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        skip = {"is_ai", "group", "file", "label", "source", "condition"}
        for row in reader:
            labels.append(int(row["is_ai"]))
            groups.append(row.get("group") or "all")
            conditions.append(row.get("condition") or "all")
            rows.append({k: (float(v) if v not in ("", None) else None)
                         for k, v in row.items() if k not in skip})
    # Operating points hold within every condition of the table (e.g. laundered copies).
    fusion = fit_calibrated_fusion(rows, labels, groups=groups, target_fpr=target_fpr,
                                   strata=conditions)
    if out is not None:
        fusion.save(out)
    return fusion
