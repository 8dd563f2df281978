"""Train and evaluate the ``forensic_image`` detector end to end.

* :func:`loso_scores` - leave-one-source-out: for every source repository a probe is fitted
  on the other sources (under the training conditions) and scores the held-out files
  under each evaluation condition; every file thus gets an out-of-fold clip score.
* :func:`metric_rows` - per-label AUC / TPR at 1 % and 5 % FPR / accuracy at the operating
  threshold, from such scores.
* :func:`train_and_export` - fit on everything, export the ONNX model, fit the calibrated
  fusion on the out-of-fold scores and write both into an output folder.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from antifake.generators import OTHER_AI, PARENT_FAMILIES, UNKNOWN, resolve_family
from antifake.training.data import Item, Split, holdout_split, leave_one_source_out
from antifake.training.features import FAMILY_TAPS, FeatureExtractor
from antifake.training.metrics import rates_at_threshold, roc_auc, tpr_at_fpr
from antifake.training.probe import LinearProbe, balanced_weights, fit_probe

DEFAULT_FAMILY = "effl0e"
# Every training frame has the logo corner masked; laundered/half/cropped copies teach
# robustness to re-encoding and resizing (measured in docs/benchmarks.md).
TRAIN_CONDITIONS = ("masked", "laundered+masked", "half+masked", "crop+masked")
CALIBRATION_CONDITIONS = ("masked", "laundered+masked")
MODEL_VERSION = "effl0e-probe-0.2"
EVAL_CONDITIONS = ("original", "masked", "laundered", "laundered+masked", "half+masked",
                   "crop+masked")
MIN_SOURCES_FOR_CLASS = 2  # a generator family is an attribution class only with >= 2 sources
# The probe's L2 weight per feature family (chosen leave one source out, docs/benchmarks.md:
# the EfficientNet features need much stronger shrinkage); ``set_l2`` overrides for all.
FAMILY_L2 = {"effl0e": 3.0}
DEFAULT_L2 = 0.1
# The attribution head's L2 (default: 10x the binary probe's). For effl0e 30 flattened every
# family probability below the 0.5 "unknown" cut; 1.0 was the best of 30/3/1/0.3 out of fold.
FAMILY_ATTRIBUTION_L2 = {"effl0e": 1.0}
L2: float | None = None


def set_l2(value: float | None) -> None:
    """Use ``value`` as the probe's L2 weight for every family (None: per-family default)."""
    global L2
    L2 = value


def l2_for(family: str) -> float:
    """The L2 weight :func:`fit_model` uses for ``family``."""
    return L2 if L2 is not None else FAMILY_L2.get(family, DEFAULT_L2)

Log = Callable[[str], None]


@dataclass
class FittedModel:
    """A binary probe plus an attribution probe over ``families`` (AI files only)."""

    family: str
    binary: LinearProbe
    attribution: LinearProbe | None
    families: list[str] = field(default_factory=list)

    def clip_logit(self, frame_feats: np.ndarray) -> float:
        """Mean frame logit: the ONNX model averages its logit map the same way."""
        return float(self.binary.logits(frame_feats)[:, 0].mean())

    def family_probs(self, frame_feats: np.ndarray) -> np.ndarray:
        if self.attribution is None:
            return np.ones(1)
        z = self.attribution.logits(frame_feats).mean(axis=0)
        e = np.exp(z - z.max())
        return np.asarray(e / e.sum())


def attribution_classes(items: Sequence[Item]) -> list[str]:
    """Families with files from >= MIN_SOURCES_FOR_CLASS sources, plus ``other_ai``."""
    sources: dict[str, set[str]] = {}
    for it in items:
        if it.is_ai:
            sources.setdefault(it.family, set()).add(it.source)
    keep = sorted(f for f, s in sources.items()
                  if len(s) >= MIN_SOURCES_FOR_CLASS and f != OTHER_AI)
    return [*keep, OTHER_AI]


def fit_model(fx: FeatureExtractor, family: str, items: Sequence[Item],
              conditions: Sequence[str] = TRAIN_CONDITIONS, l2: float | None = None,
              classes: list[str] | None = None) -> FittedModel:
    """Fit the binary and attribution probes on frame features of ``items``."""
    rows, ys, groups, srcs, fams = [], [], [], [], []
    for cond in conditions:
        for it in items:
            f = fx.frames_features(family, cond, it)
            rows.append(f)
            n = len(f)
            ys += [int(it.is_ai)] * n
            groups += [f"{int(it.is_ai)}_{it.media_type}"] * n
            srcs += [it.source] * n
            fams += [it.family] * n
    x = np.concatenate(rows)
    y = np.asarray(ys)
    # Balance groups/sources per file, then share each file's weight among its frames.
    w = balanced_weights(groups, srcs)  # per row: every source's frames share its weight
    l2 = l2_for(family) if l2 is None else l2
    binary = fit_probe(x, y, w, 2, l2)
    classes = classes or attribution_classes(items)
    attribution = None
    ai = y == 1
    if len(classes) > 1:
        fam_a = np.asarray([f if f in classes else OTHER_AI for f in fams])
        idx = np.asarray([classes.index(f) for f in fam_a[ai]])
        wa = balanced_weights(list(fam_a[ai]), list(np.asarray(srcs)[ai]))
        attribution = fit_probe(x[ai], idx, wa, len(classes),
                                FAMILY_ATTRIBUTION_L2.get(family, l2 * 10))
    return FittedModel(family, binary, attribution, classes)


@dataclass
class OOFScores:
    """Out-of-fold clip logits per condition, family probabilities, and the fold of each."""

    items: list[Item]
    logits: dict[str, np.ndarray]
    family_probs: dict[str, np.ndarray]
    classes: list[str]
    folds: list[str]


def split_iter(items: Sequence[Item], split: str) -> list[Split]:
    if split == "leave-one-source-out":
        return list(leave_one_source_out(items))
    if split == "holdout":
        return [holdout_split(items)]
    raise ValueError(f"unknown split {split!r}")


def loso_scores(fx: FeatureExtractor, family: str, items: Sequence[Item],
                eval_conditions: Sequence[str] = EVAL_CONDITIONS,
                train_conditions: Sequence[str] = TRAIN_CONDITIONS, split: str =
                "leave-one-source-out", log: Log | None = None) -> OOFScores:
    """Out-of-fold scores for every file (see module docstring)."""
    items = list(items)
    classes = attribution_classes(items)
    index = {id(it): i for i, it in enumerate(items)}
    logits = {c: np.full(len(items), np.nan) for c in eval_conditions}
    probs = {c: np.full((len(items), len(classes)), np.nan) for c in eval_conditions}
    folds = [""] * len(items)
    for sp in split_iter(items, split):
        if len({it.is_ai for it in sp.train}) < 2:
            if log:
                log(f"fold {sp.name}: skipped, training side lacks a class")
            continue
        model = fit_model(fx, family, sp.train, train_conditions, classes=classes)
        for it in sp.test:
            i = index[id(it)]
            folds[i] = sp.name
            for c in eval_conditions:
                f = fx.frames_features(family, c, it)
                logits[c][i] = model.clip_logit(f)
                probs[c][i] = model.family_probs(f)
        if log:
            log(f"fold {sp.name}: trained on {len(sp.train)}, scored {len(sp.test)}")
    return OOFScores(items, logits, probs, classes, folds)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def metric_rows(oof: OOFScores, condition: str, threshold: float | dict[str, float],
                calibrate: Callable[[np.ndarray], np.ndarray] | None = None) -> list[dict]:
    """Per-label and pooled metrics for ``condition``; probabilities via ``calibrate``.

    ``threshold`` is one value or one per media type (``image`` / ``video``).
    """
    finite = np.isfinite(oof.logits[condition])
    z = oof.logits[condition][finite]
    p = calibrate(z) if calibrate else _sigmoid(z)
    items = [it for it, ok in zip(oof.items, finite, strict=True) if ok]
    rows = []

    def add(name: str, pos: np.ndarray, neg: np.ndarray, media_type: str) -> None:
        sel = pos | neg
        if not pos.any() or not neg.any():
            return
        y = pos[sel].astype(int)
        s = p[sel]
        thr = threshold.get(media_type, max(threshold.values())) if isinstance(
            threshold, dict) else threshold
        r = rates_at_threshold(y, s, thr)
        rows.append({
            "condition": condition, "group": name, "n_ai": int(pos.sum()),
            "n_real": int(neg.sum()), "auc": roc_auc(y, s),
            "tpr@1%fpr": tpr_at_fpr(y, s, 0.01), "tpr@5%fpr": tpr_at_fpr(y, s, 0.05),
            "accuracy": r["accuracy"], "tpr": r["tpr"], "fpr": r["fpr"],
        })

    labels = np.asarray([it.label for it in items])
    mtype = np.asarray([it.media_type for it in items])
    ai = np.asarray([it.is_ai for it in items])
    for mt in ("video", "image"):
        real = (~ai) & (mtype == mt)
        add(f"all AI {mt} vs real {mt}", ai & (mtype == mt), real, mt)
        for lab in sorted(set(labels[ai & (mtype == mt)])):
            add(f"{lab} vs real {mt}", labels == lab, real, mt)
    return rows


def attribution_rows(oof: OOFScores, condition: str, unknown_below: float) -> list[dict]:
    """Top-1 attribution accuracy per true family (AI files only), out of fold."""
    probs = oof.family_probs[condition]
    out = []
    fams = np.asarray([it.family if it.family in oof.classes else OTHER_AI for it in oof.items])
    ai = np.asarray([it.is_ai for it in oof.items]) & np.isfinite(probs).all(axis=1)
    for fam in oof.classes:
        sel = ai & (fams == fam)
        if not sel.any():
            continue
        # The detector's own rule: top family, else a parent family, else unknown.
        pred = np.asarray([resolve_family(dict(zip(oof.classes, p, strict=True)),
                                          unknown_below)[0] for p in probs[sel]])
        parents = [k for k, members in PARENT_FAMILIES.items() if fam in members]
        counts = {c: int((pred == c).sum())
                  for c in [*oof.classes, *PARENT_FAMILIES, UNKNOWN]}
        out.append({"condition": condition, "family": fam, "n": int(sel.sum()),
                    "top1": float(np.mean(probs[sel].argmax(axis=1)
                                          == oof.classes.index(fam))),
                    "reported_right": float(np.mean(pred == fam)),
                    "reported_right_or_parent": float(np.mean(np.isin(pred, [fam, *parents]))),
                    "predicted": counts})
    return out


def fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def rows_markdown(rows: list[dict]) -> str:
    head = ("| condition | group | n AI | n real | AUC | TPR@1%FPR | TPR@5%FPR | acc@thr "
            "| TPR@thr | FPR@thr |\n|---|---|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['condition']} | {r['group']} | {r['n_ai']} | {r['n_real']} | {fmt(r['auc'])} "
        f"| {fmt(r['tpr@1%fpr'])} | {fmt(r['tpr@5%fpr'])} | {fmt(r['accuracy'])} "
        f"| {fmt(r['tpr'])} | {fmt(r['fpr'])} |\n" for r in rows)


def save_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=float) + "\n")


def oof_table(oof: OOFScores, conditions: Sequence[str]) -> list[dict]:
    """Rows for ``oof_scores.tsv``: one per file and condition, score in ``forensic_image``."""
    rows = []
    for c in conditions:
        for it, z in zip(oof.items, oof.logits[c], strict=True):
            if np.isfinite(z):
                rows.append({"file": str(it.path), "label": it.label, "source": it.source,
                             "condition": c, "group": it.media_type, "is_ai": int(it.is_ai),
                             "forensic_image": float(_sigmoid(np.asarray(z)))})
    return rows


def write_tsv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)


def train_and_export(items: Sequence[Item], out_dir: Path, cache_dir: Path,
                     family: str = DEFAULT_FAMILY, max_frames: int = 2,
                     train_conditions: Sequence[str] = TRAIN_CONDITIONS,
                     calibration_conditions: Sequence[str] = CALIBRATION_CONDITIONS,
                     unknown_below: float = 0.5, log: Log | None = None) -> dict:
    """Fit on ``items``, export ONNX + config + calibrated fusion into ``out_dir``.

    Writes ``forensic_image.onnx``, ``forensic_image.json`` (classes, thresholds, version),
    ``calibration.json`` (:class:`antifake.calibration.CalibratedFusion` fitted on
    leave-one-source-out scores) and ``oof_scores.tsv`` (those scores, for refits).
    """
    import onnxruntime as ort

    from antifake.calibration import fit_calibrated_fusion, thresholds_by_group
    from antifake.detectors.forensic_image.preprocess import MAX_SIDE, prepare_rgb, to_array
    from antifake.training.backbone import ForensicNet, export_onnx
    from antifake.training.backbone_effl0 import EffLite0ForensicNet
    from antifake.training.features import taps_of
    from antifake.training.media_io import frames_for_condition

    items = list(items)
    out_dir.mkdir(parents=True, exist_ok=True)
    fx = FeatureExtractor(cache_dir, max_frames=max_frames)
    oof = loso_scores(fx, family, items, calibration_conditions, train_conditions, log=log)
    table = oof_table(oof, calibration_conditions)
    if not table:
        raise ValueError("no out-of-fold scores: need >= 2 sources with both classes")
    write_tsv(out_dir / "oof_scores.tsv", table)
    fusion = fit_calibrated_fusion(
        [{"forensic_image": r["forensic_image"]} for r in table],
        [r["is_ai"] for r in table], groups=[r["group"] for r in table],
        strata=[r["condition"] for r in table])
    fusion.meta.update({"fitted_on": "leave-one-source-out scores of forensic_image",
                        "conditions": list(calibration_conditions)})
    fusion.save(out_dir / "calibration.json")
    # The detector's own operating threshold: <= 5 % FPR on real files of every media type,
    # within every calibration condition (the strictest condition decides).
    thresholds = thresholds_by_group(
        np.asarray([r["forensic_image"] for r in table]),
        np.asarray([r["is_ai"] for r in table]), np.asarray([r["group"] for r in table]),
        [r["condition"] for r in table], 0.05)
    threshold = max(thresholds.values())

    model = fit_model(fx, family, items, train_conditions, classes=oof.classes)
    taps = taps_of(family)
    wb, bb = model.binary.raw_weights()
    weights, biases = [wb], [bb]
    if model.attribution is not None:
        wa, ba = model.attribution.raw_weights()
        weights.append(wa)
        biases.append(ba)
    n_outputs = sum(len(b) for b in biases)
    net: ForensicNet | EffLite0ForensicNet
    if family.startswith("effl0e"):
        net = EffLite0ForensicNet(taps, n_outputs=n_outputs)
    else:
        net = ForensicNet(taps, n_outputs=n_outputs, energy=family.startswith("mnv2e"))
    net.set_probe(np.concatenate(weights), np.concatenate(biases))
    onnx_path = out_dir / "forensic_image.onnx"
    export_onnx(net, onnx_path)
    # Round-trip check: the ONNX logit must equal the probe on the cached features.
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    frame = frames_for_condition(items[0].path, "masked", cache_dir, max_frames)[0]
    onnx_logit = float(sess.run(None, {"image": to_array(prepare_rgb(frame))})[0][0, 0])
    probe_logit = model.clip_logit(fx.frames_features(family, "masked", items[0])[:1])
    if abs(onnx_logit - probe_logit) > 1e-2 * max(1.0, abs(probe_logit)):
        raise RuntimeError(f"ONNX/probe mismatch: {onnx_logit} vs {probe_logit}")
    config = {
        "version": MODEL_VERSION, "family": family, "taps": list(taps), "max_side": MAX_SIDE,
        "l2": l2_for(family),
        "classes": oof.classes if model.attribution is not None else [],
        "unknown_below": unknown_below, "threshold": threshold, "thresholds": thresholds,
        "train_conditions": list(train_conditions), "max_frames_per_video": max_frames,
        "n_files": len(items), "n_sources": len({it.source for it in items}),
        "labels": {lab: sum(1 for it in items if it.label == lab)
                   for lab in sorted({it.label for it in items})},
    }
    save_json(out_dir / "forensic_image.json", config)
    if log:
        log(f"exported {onnx_path} ({onnx_path.stat().st_size // 1024} KiB), "
            f"threshold {threshold:.3f}, calibration {fusion.to_dict()}")
    return {"config": config, "calibration": fusion.to_dict(), "oof": oof}


__all__ = ["DEFAULT_FAMILY", "EVAL_CONDITIONS", "FAMILY_TAPS", "FittedModel", "OOFScores",
           "TRAIN_CONDITIONS", "attribution_rows", "fit_model", "loso_scores", "metric_rows",
           "rows_markdown"]
