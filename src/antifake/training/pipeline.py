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
from typing import Any

import numpy as np

from antifake.generators import OTHER_AI, PARENT_FAMILIES, UNKNOWN, resolve_family
from antifake.training.data import (
    Item,
    Split,
    holdout_split,
    leave_one_source_out,
    source_kfold,
)
from antifake.training.features import FAMILY_TAPS, FeatureExtractor
from antifake.training.metrics import roc_auc, sigmoid, tpr_at_fpr
from antifake.training.probe import LinearProbe, balanced_weights, fit_probe

DEFAULT_FAMILY = "effl0e"
# The second shipped model (detector semantic_clip): a probe on the class tokens of all 12
# blocks of the frozen CLIP encoder (RINE-style). It beat the projected embedding alone
# (clip-emb-probe-0.1) by ~0.03 AUC and ~0.15 TPR at 5 % FPR on video and images under
# source-grouped folds (docs/benchmarks.md, "Feature families").
SEMANTIC_FAMILY = "clipm"
SEMANTIC_VERSION = "clipm-probe-0.2"
# Every training frame has the logo corner masked. ``debias`` puts real and AI files
# alike through one random transcoding chain (GIF palette, downscale, H.264/VP9, JPEG,
# WebP, crop) so that format cannot separate the classes; laundered copies (H.264 CRF 28,
# <= 720p) are how media reach a moderation queue (docs/benchmarks.md).
TRAIN_CONDITIONS = ("masked", "debias+masked", "laundered+masked")
CALIBRATION_CONDITIONS = ("masked", "laundered+masked")
MODEL_VERSION = "effl0e-probe-0.3"
EVAL_CONDITIONS = ("original", "masked", "laundered", "laundered+masked", "half+masked",
                   "crop+masked")
MIN_SOURCES_FOR_CLASS = 2  # a generator family is an attribution class only with >= 2 sources
# The probe's L2 weight per feature family (chosen leave one source out, docs/benchmarks.md:
# the EfficientNet features need much stronger shrinkage); ``set_l2`` overrides for all.
FAMILY_L2 = {"effl0e": 3.0, "clip_emb": 0.3, "clip": 1.0, "clip_tok": 1.0, "clipm": 0.1,
             "clipm_emb": 0.1}
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
              classes: list[str] | None = None, attribution: bool = True) -> FittedModel:
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
    head = None
    ai = y == 1
    if attribution and len(classes) > 1:
        fam_a = np.asarray([f if f in classes else OTHER_AI for f in fams])
        idx = np.asarray([classes.index(f) for f in fam_a[ai]])
        wa = balanced_weights(list(fam_a[ai]), list(np.asarray(srcs)[ai]))
        head = fit_probe(x[ai], idx, wa, len(classes),
                         FAMILY_ATTRIBUTION_L2.get(family, l2 * 10))
    return FittedModel(family, binary, head, classes if head is not None else [])


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
    if split == "source-10fold":
        return list(source_kfold(items, 10))
    raise ValueError(f"unknown split {split!r}")


def loso_scores(fx: FeatureExtractor, family: str, items: Sequence[Item],
                eval_conditions: Sequence[str] = EVAL_CONDITIONS,
                train_conditions: Sequence[str] = TRAIN_CONDITIONS, split: str =
                "leave-one-source-out", log: Log | None = None,
                attribution: bool = True) -> OOFScores:
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
        model = fit_model(fx, family, sp.train, train_conditions, classes=classes,
                          attribution=attribution)
        for it in sp.test:
            i = index[id(it)]
            folds[i] = sp.name
            for c in eval_conditions:
                f = fx.frames_features(family, c, it)
                logits[c][i] = model.clip_logit(f)
                if model.attribution is not None:
                    probs[c][i] = model.family_probs(f)
        if log:
            log(f"fold {sp.name}: trained on {len(sp.train)}, scored {len(sp.test)}")
    return OOFScores(items, logits, probs, classes, folds)


def metric_rows(oof: OOFScores, condition: str, thresholds: np.ndarray,
                calibrate: Callable[[np.ndarray], np.ndarray] | None = None) -> list[dict]:
    """Per-label and pooled metrics for ``condition``; probabilities via ``calibrate``.

    ``thresholds`` holds one probability threshold per file, aligned with ``oof.items``
    (the nested thresholds of :func:`antifake.training.operating.nested_thresholds`); a
    file is flagged when its probability is above its threshold.
    """
    finite = np.isfinite(oof.logits[condition])
    z = oof.logits[condition][finite]
    p = calibrate(z) if calibrate else sigmoid(z)
    items = [it for it, ok in zip(oof.items, finite, strict=True) if ok]
    flagged = p > thresholds[finite]
    rows = []

    def add(name: str, pos: np.ndarray, neg: np.ndarray) -> None:
        sel = pos | neg
        if not pos.any() or not neg.any():
            return
        y = pos[sel].astype(int)
        s = p[sel]
        rows.append({
            "condition": condition, "group": name, "n_ai": int(pos.sum()),
            "n_real": int(neg.sum()),
            "ai_sources": len({it.source for it, m in zip(items, pos, strict=True) if m}),
            "real_sources": len({it.source for it, m in zip(items, neg, strict=True) if m}),
            "auc": roc_auc(y, s),
            "tpr@1%fpr": tpr_at_fpr(y, s, 0.01), "tpr@5%fpr": tpr_at_fpr(y, s, 0.05),
            "accuracy": float(np.mean(flagged[sel] == pos[sel])),
            "tpr": float(flagged[pos].mean()), "fpr": float(flagged[neg].mean()),
        })

    labels = np.asarray([it.label for it in items])
    mtype = np.asarray([it.media_type for it in items])
    ai = np.asarray([it.is_ai for it in items])
    for mt in ("video", "image"):
        real = (~ai) & (mtype == mt)
        add(f"all AI {mt} vs real {mt}", ai & (mtype == mt), real)
        if mt == "video":
            add("all Runway vs real video", ai & np.char.startswith(labels.astype(str),
                                                                     "runway"), real)
        for lab in sorted(set(labels[ai & (mtype == mt)])):
            add(f"{lab} vs real {mt}", labels == lab, real)
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
    head = ("| condition | group | n AI (sources) | n real (sources) | AUC | TPR@1%FPR "
            "| TPR@5%FPR | acc@thr | TPR@thr | FPR@thr |\n" + "|---" * 10 + "|\n")
    return head + "".join(
        f"| {r['condition']} | {r['group']} | {r['n_ai']} ({r.get('ai_sources', '?')}) "
        f"| {r['n_real']} ({r.get('real_sources', '?')}) | {fmt(r['auc'])} "
        f"| {fmt(r['tpr@1%fpr'])} | {fmt(r['tpr@5%fpr'])} | {fmt(r['accuracy'])} "
        f"| {fmt(r['tpr'])} | {fmt(r['fpr'])} |\n" for r in rows)


def save_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=float) + "\n")


def oof_table(oofs: dict[str, OOFScores], conditions: Sequence[str]) -> list[dict]:
    """Rows for ``oof_scores.tsv``: one per file and condition, one score column per
    detector (``forensic_image``, ``semantic_clip``) holding its out-of-fold probability."""
    rows = []
    first = next(iter(oofs.values()))
    for c in conditions:
        for i, it in enumerate(first.items):
            scores = {det: float(sigmoid(np.asarray(o.logits[c][i])))
                      for det, o in oofs.items()}
            if all(np.isfinite(v) for v in scores.values()):
                rows.append({"file": str(it.path), "label": it.label, "source": it.source,
                             "condition": c, "group": it.media_type, "is_ai": int(it.is_ai),
                             **scores})
    return rows


def fuse_oof(oofs: dict[str, OOFScores], conditions: Sequence[str],
             table: list[dict] | None = None) -> tuple[Any, OOFScores]:
    """Fit the calibrated fusion on the detectors' out-of-fold scores; return it and the
    fused log-odds as an :class:`OOFScores` (so the same tables can be printed for it).

    The fusion has one weight per detector and an intercept, fitted on every source's
    out-of-fold scores; its thresholds are then set per media type by
    :func:`antifake.training.operating.operating_points` (pooled and per format group,
    condition), the same rule the nested evaluation applies without the judged source.
    ``table``: the rows of :func:`oof_table` when the caller already made them.
    """
    from antifake.calibration import fit_calibrated_fusion
    from antifake.training.formats import scored_format_groups
    from antifake.training.operating import operating_points

    table = oof_table(oofs, conditions) if table is None else table
    if not table:
        raise ValueError("no out-of-fold scores: need >= 2 sources with both classes")
    fusion = fit_calibrated_fusion(
        [{d: r[d] for d in oofs} for r in table], [r["is_ai"] for r in table],
        groups=[r["group"] for r in table], strata=[r["condition"] for r in table])
    first = next(iter(oofs.values()))
    fused = {c: np.asarray([fusion.log_odds({d: float(sigmoid(np.asarray(o.logits[c][i])))
                                             for d, o in oofs.items()})
                            if all(np.isfinite(o.logits[c][i]) for o in oofs.values())
                            else np.nan for i in range(len(first.items))])
             for c in conditions}
    thresholds: dict[str, float] = {}
    by_format: dict[str, dict[str, float]] = {}
    for mt in ("image", "video"):
        idx = [i for i, it in enumerate(first.items) if it.media_type == mt]
        if not idx:
            continue
        sub = [first.items[i] for i in idx]
        # Within every condition (as received, laundered) the line must hold: the
        # strictest condition decides each threshold.
        # Groups as the engine reads each file in that condition (a laundered GIF is an
        # MP4 then), so the lines are the ones a laundered upload meets.
        points = [operating_points(fused[c][idx], sub, groups=[
            scored_format_groups(it.path, it.media_type, c) for it in sub])
                  for c in conditions]
        thresholds[mt] = float(sigmoid(np.asarray(max(p for p, _ in points))))
        groups = sorted({g for _, bg in points for g in bg})
        by_format[mt] = {g: float(sigmoid(np.asarray(max(bg[g] for _, bg in points
                                                           if g in bg))))
                         for g in groups}
    fusion.ai_thresholds = thresholds
    fusion.ai_thresholds_by_format = by_format
    fusion.ai_threshold = max([*thresholds.values(),
                               *(v for bg in by_format.values() for v in bg.values())])
    # "authentic" stays below the AI line of its media type.
    fusion.authentic_thresholds = {k: min(v, thresholds.get(k, v))
                                   for k, v in fusion.authentic_thresholds.items()}
    # Reported, never voting: splicing is a localisation aid (its score is no calibrated
    # probability), and the temporal model's flow features were measured at AUC 0.69 on
    # sources outside the corpus and have no out-of-fold scores on the broad corpus.
    fusion.ignore = sorted({"splicing", "temporal"} - set(oofs))
    fusion.meta["ignore_reason"] = (
        "splicing: localisation aid, not an AI detector (AUC 0.57 on unseen sources); "
        "temporal: not refitted on the broad corpus (AUC 0.69 on unseen sources)")
    fusion.meta.update({"fitted_on": "out-of-fold scores (split by source repository) of "
                        + " and ".join(oofs), "conditions": list(conditions),
                        "threshold_rule": "95th percentile of real scores of all real "
                        "files (ai_thresholds) and 97th of every format group with >= 20 "
                        "real files from >= 3 sources (ai_thresholds_by_format), strictest "
                        "condition; a file is judged against the strictest of its media "
                        "type's line and its own format groups' lines"})
    return fusion, OOFScores(first.items, fused, first.family_probs, first.classes,
                             first.folds)


def write_tsv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)


def keep_audio_operating_points(fusion: Any) -> None:
    """Carry the selected calibration's audio operating points and per-media ignores into a
    refitted image/video calibration: this training run does not touch the speech model,
    so installing it must not change audio verdicts."""
    from antifake.calibration import CalibratedFusion

    current = CalibratedFusion.load()
    for key in ("audio",):
        if key in current.ai_thresholds:
            fusion.ai_thresholds[key] = current.ai_thresholds[key]
        if key in current.authentic_thresholds:
            fusion.authentic_thresholds[key] = current.authentic_thresholds[key]
    for media_type, names in current.ignore_by_media_type.items():
        fusion.ignore_by_media_type.setdefault(media_type, list(names))


def column_ranges(cols: np.ndarray) -> list[list[int]]:
    """``[[start, stop], ...]`` runs of consecutive column indices (compact in JSON)."""
    runs: list[list[int]] = []
    for c in (int(v) for v in cols):
        if runs and runs[-1][1] == c:
            runs[-1][1] = c + 1
        else:
            runs.append([c, c + 1])
    return runs


def train_and_export(items: Sequence[Item], out_dir: Path, cache_dir: Path,
                     family: str = DEFAULT_FAMILY, max_frames: int = 2,
                     train_conditions: Sequence[str] = TRAIN_CONDITIONS,
                     calibration_conditions: Sequence[str] = CALIBRATION_CONDITIONS,
                     unknown_below: float = 0.5, log: Log | None = None,
                     semantic_family: str | None = SEMANTIC_FAMILY,
                     split: str = "leave-one-source-out") -> dict:
    """Fit on ``items``, export both models + the calibrated fusion into ``out_dir``.

    Writes ``forensic_image.onnx`` / ``forensic_image.json`` (trace model: classes,
    thresholds, version), ``semantic_clip.json`` (CLIP probe; skipped when
    ``semantic_family`` is None), ``calibration.json``
    (:class:`antifake.calibration.CalibratedFusion` fitted on leave-one-source-out scores)
    and ``oof_scores.tsv`` (those scores, for refits).
    """
    import onnxruntime as ort

    from antifake.calibration import thresholds_by_group
    from antifake.detectors.forensic_image.preprocess import MAX_SIDE, prepare_rgb, to_array
    from antifake.training.backbone import ForensicNet, export_onnx
    from antifake.training.backbone_effl0 import EffLite0ForensicNet
    from antifake.training.features import taps_of
    from antifake.training.media_io import frames_for_condition

    items = list(items)
    out_dir.mkdir(parents=True, exist_ok=True)
    fx = FeatureExtractor(cache_dir, max_frames=max_frames)
    oofs = {"forensic_image": loso_scores(fx, family, items, calibration_conditions,
                                          train_conditions, split=split, log=log)}
    if semantic_family:
        oofs["semantic_clip"] = loso_scores(fx, semantic_family, items,
                                            calibration_conditions, train_conditions,
                                            split=split, log=log, attribution=False)
    oof = oofs["forensic_image"]
    table = oof_table(oofs, calibration_conditions)
    if not table:
        raise ValueError("no out-of-fold scores: need >= 2 sources with both classes")
    write_tsv(out_dir / "oof_scores.tsv", table)
    fusion, _fused = fuse_oof(oofs, calibration_conditions, table)
    fusion.meta["split"] = split
    keep_audio_operating_points(fusion)
    fusion.save(out_dir / "calibration.json")

    def own_thresholds(det: str) -> dict[str, float]:
        # Each detector's own line (for its evidence text): <= 5 % FPR on real files of
        # every media type within every calibration condition.
        return thresholds_by_group(
            np.asarray([r[det] for r in table]), np.asarray([r["is_ai"] for r in table]),
            np.asarray([r["group"] for r in table]), [r["condition"] for r in table], 0.05)

    thresholds = own_thresholds("forensic_image")
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
    facts = {
        "train_conditions": list(train_conditions), "max_frames_per_video": max_frames,
        "n_files": len(items), "n_sources": len({it.source for it in items}),
        "labels": {lab: sum(1 for it in items if it.label == lab)
                   for lab in sorted({it.label for it in items})},
    }
    config = {
        "version": MODEL_VERSION, "family": family, "taps": list(taps), "max_side": MAX_SIDE,
        "l2": l2_for(family),
        "classes": oof.classes if model.attribution is not None else [],
        "unknown_below": unknown_below, "threshold": threshold, "thresholds": thresholds,
        **facts,
    }
    save_json(out_dir / "forensic_image.json", config)
    if semantic_family:
        sem = fit_model(fx, semantic_family, items, train_conditions, attribution=False)
        ws, bs = sem.binary.raw_weights()
        from antifake.training.features import clip_columns

        save_json(out_dir / "semantic_clip.json", {
            "version": (SEMANTIC_VERSION if semantic_family == SEMANTIC_FAMILY
                        else f"{semantic_family}-probe"), "family": semantic_family,
            "columns": column_ranges(clip_columns(semantic_family)),
            "l2": l2_for(semantic_family),
            "weights": [round(float(v), 7) for v in ws[0]], "bias": float(bs[0]),
            "thresholds": own_thresholds("semantic_clip"), **facts})
    if log:
        log(f"exported {onnx_path} ({onnx_path.stat().st_size // 1024} KiB), "
            f"threshold {threshold:.3f}, calibration {fusion.to_dict()}")
    return {"config": config, "calibration": fusion.to_dict(), "oof": oof, "oofs": oofs}


__all__ = ["DEFAULT_FAMILY", "EVAL_CONDITIONS", "FAMILY_TAPS", "FittedModel", "OOFScores",
           "SEMANTIC_FAMILY", "TRAIN_CONDITIONS", "attribution_rows", "fit_model", "fuse_oof",
           "loso_scores", "metric_rows",
           "rows_markdown"]
