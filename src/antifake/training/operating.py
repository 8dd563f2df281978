"""Operating thresholds that hold per source and per format group, and the tables proving it.

Each media type has a pooled threshold (95th percentile of all its real files' scores) and
one per format group with enough real files (:data:`MIN_GROUP_FILES` from
:data:`MIN_GROUP_SOURCES` sources), set at :data:`GROUP_FPR` (97th percentile): a group's
line rests on a handful of sources, so a new source's tail lands above a 95th-percentile
line more often than 5 % of the time (nested, 10 source folds, laundered: GIF 14.3 % and
481-719 px 6.6 % of real videos flagged at 5 %; every group <= 5 % at 3 %). A file is
judged against the strictest of the pooled line and the lines of *its own* groups
(:func:`threshold_for`), so a group such as "real GIF" cannot sit far above the line while
the pooled rate looks fine, yet a JPEG is not held to the GIF line. (Until
effl0e-probe-0.3 every file was held to the strictest line of all
groups: false-positive rates of 1-2 % overall and half the AI files missed.)

Evaluation is nested: the threshold judging the files of source *S* is fitted on the
out-of-fold scores of every *other* source (:func:`nested_thresholds`), so the reported
false-positive rates are what a user sees on a source the threshold never saw.

The groups whose lines judge a file are those of the file *as scored*
(:func:`antifake.training.formats.scored_format_groups`): scored laundered, a published GIF
is an H.264 MP4 and meets the lines every laundered clip meets, as it would in the engine.
The tables (:func:`rate_rows`) report the published file's groups ("real GIFs, laundered").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from antifake.training.data import Item
from antifake.training.formats import GROUP_ORDER, format_groups, scored_format_groups
from antifake.training.metrics import roc_auc, threshold_at_fpr

TARGET_FPR = 0.05
GROUP_FPR = 0.03
MIN_GROUP_FILES = 20
MIN_GROUP_SOURCES = 3


def operating_points(scores: np.ndarray, items: Sequence[Item], fpr: float = TARGET_FPR,
                     groups: Sequence[list[str]] | None = None,
                     group_fpr: float | None = None) -> tuple[float, dict[str, float]]:
    """The pooled threshold (``fpr``) over the real files among ``items`` and one per
    format group with enough real files (``group_fpr``, default :data:`GROUP_FPR` scaled
    by ``fpr`` / :data:`TARGET_FPR`; see module doc)."""
    group_fpr = group_fpr if group_fpr is not None else fpr * GROUP_FPR / TARGET_FPR
    groups = groups if groups is not None else [format_groups(it.path, it.media_type)
                                                for it in items]
    real = np.asarray([not it.is_ai for it in items]) & np.isfinite(scores)
    if not real.any():
        return float("inf"), {}
    members: dict[str, list[int]] = defaultdict(list)
    for i, gs in enumerate(groups):
        if real[i]:
            for g in gs:
                members[g].append(i)
    by_group = {g: threshold_at_fpr(scores[idx], group_fpr) for g, idx in members.items()
                if (len(idx) >= MIN_GROUP_FILES
                    and len({items[i].source for i in idx}) >= MIN_GROUP_SOURCES)}
    return threshold_at_fpr(scores[real], fpr), by_group


def threshold_for(groups: Sequence[str], pooled: float, by_group: dict[str, float]) -> float:
    """The line a file of ``groups`` is judged against: the strictest of the pooled one and
    those of its own groups."""
    return max([pooled, *(by_group[g] for g in groups if g in by_group)])


def operating_threshold(scores: np.ndarray, items: Sequence[Item], fpr: float = TARGET_FPR,
                        groups: Sequence[list[str]] | None = None) -> float:
    """The strictest line of :func:`operating_points` (every group's): a single threshold
    for when the file's format is not known."""
    pooled, by_group = operating_points(scores, items, fpr, groups)
    return max([pooled, *by_group.values()])


def nested_thresholds(scores: np.ndarray, items: Sequence[Item],
                      fpr: float = TARGET_FPR, condition: str = "original") -> np.ndarray:
    """Per file: the line of its media type and format groups (:func:`threshold_for`)
    fitted without its own source. ``condition``: the one ``scores`` were computed under;
    lines are fitted and applied on the groups of the file as the engine would read it
    then (:func:`antifake.training.formats.scored_format_groups`)."""
    groups = [scored_format_groups(it.path, it.media_type, condition) for it in items]
    out = np.full(len(items), np.nan)
    by_type = defaultdict(list)
    for i, it in enumerate(items):
        by_type[it.media_type].append(i)
    for idx in by_type.values():
        sources = sorted({items[i].source for i in idx})
        for src in sources:
            keep = [i for i in idx if items[i].source != src]
            pooled, by_group = operating_points(scores[keep], [items[i] for i in keep], fpr,
                                                [groups[i] for i in keep])
            for i in idx:
                if items[i].source == src:
                    out[i] = threshold_for(groups[i], pooled, by_group)
    return out


def rate_rows(scores: np.ndarray, thresholds: np.ndarray, items: Sequence[Item]) -> dict:
    """Real-media FPR and AI TPR at per-file ``thresholds``: per media type, format group
    and (real files) source, each with its number of files and of sources."""
    flagged = scores > thresholds
    ok = np.isfinite(scores) & np.isfinite(thresholds)
    groups = [format_groups(it.path, it.media_type) for it in items]

    def stats(idx: list[int]) -> dict:
        real = [i for i in idx if not items[i].is_ai and ok[i]]
        ai = [i for i in idx if items[i].is_ai and ok[i]]
        return {"n_real": len(real), "real_sources": len({items[i].source for i in real}),
                "fp": int(flagged[real].sum()) if real else 0,
                "fpr": float(flagged[real].mean()) if real else float("nan"),
                "n_ai": len(ai), "ai_sources": len({items[i].source for i in ai}),
                "tpr": float(flagged[ai].mean()) if ai else float("nan")}

    out: dict = {"media": {}, "format": {}, "source": {}}
    for mt in ("video", "image"):
        idx = [i for i, it in enumerate(items) if it.media_type == mt]
        if not idx:
            continue
        out["media"][mt] = stats(idx)
        fmt = {}
        for g in GROUP_ORDER:
            gi = [i for i in idx if g in groups[i]]
            if gi:
                fmt[g] = stats(gi)
        out["format"][mt] = fmt
        srcs = sorted({items[i].source for i in idx if not items[i].is_ai})
        out["source"][mt] = {s: stats([i for i in idx if items[i].source == s])
                             for s in srcs}
    return out


def source_intervals(scores: np.ndarray, thresholds: np.ndarray, items: Sequence[Item],
                     n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """Intervals for AUC, TPR and real FPR per media type, by bootstrap over sources.

    Files of one source are not independent (one camera, one generator setting), so the
    resampling unit is the source repository: each of ``n_boot`` draws takes as many
    sources as there are, with replacement, with all their files. The per-file
    ``thresholds`` stay fixed (they are already nested), so the interval says how much the
    rates move with *which* sources a user meets, not how the threshold fit would move.
    Returns ``{media: {metric: {"value", "low", "high"}, "n_sources": k}}``.
    """
    rng = np.random.default_rng(seed)
    ok = np.isfinite(scores) & np.isfinite(thresholds)
    flagged = scores > thresholds
    ai = np.asarray([it.is_ai for it in items], dtype=bool)

    def metrics(sel: np.ndarray) -> tuple[float, float, float]:
        pos, neg = sel[ai[sel]], sel[~ai[sel]]
        nan = float("nan")
        auc = roc_auc(ai[sel], scores[sel]) if len(pos) and len(neg) else nan
        tpr = float(flagged[pos].mean()) if len(pos) else nan
        fpr = float(flagged[neg].mean()) if len(neg) else nan
        return auc, tpr, fpr

    alpha = (1.0 - level) / 2.0
    out: dict = {}
    for mt in ("video", "image"):
        idx = [i for i, it in enumerate(items) if it.media_type == mt and ok[i]]
        if not idx:
            continue
        by_source: dict[str, list[int]] = defaultdict(list)
        for i in idx:
            by_source[items[i].source].append(i)
        groups = [np.asarray(v) for v in by_source.values()]
        point = metrics(np.asarray(idx))
        draws = np.asarray([metrics(np.concatenate(
            [groups[j] for j in rng.integers(0, len(groups), len(groups))]))
            for _ in range(n_boot)])
        out[mt] = {"n_sources": len(groups)}
        for k, name in enumerate(("auc", "tpr", "fpr")):
            col = draws[:, k][np.isfinite(draws[:, k])]
            low, high = (np.quantile(col, [alpha, 1.0 - alpha]) if len(col)
                         else (float("nan"), float("nan")))
            out[mt][name] = {"value": point[k], "low": float(low), "high": float(high)}
    return out


def rates_markdown(rates: dict) -> str:
    """Tables of :func:`rate_rows`: per media type, per format group, worst real sources."""
    def f(v: float) -> str:
        return "n/a" if v != v else f"{100 * v:.1f} %"

    lines = ["| media | format group | real files (sources) | FP | real FPR "
             "| AI files (sources) | TPR |", "|---|---|---|---|---|---|---|"]
    for mt, s in rates["media"].items():
        lines.append(f"| {mt} | **all** | {s['n_real']} ({s['real_sources']}) | {s['fp']} "
                     f"| {f(s['fpr'])} | {s['n_ai']} ({s['ai_sources']}) | {f(s['tpr'])} |")
        for g, gs in rates["format"][mt].items():
            lines.append(f"| {mt} | {g} | {gs['n_real']} ({gs['real_sources']}) | {gs['fp']} "
                         f"| {f(gs['fpr'])} | {gs['n_ai']} ({gs['ai_sources']}) "
                         f"| {f(gs['tpr'])} |")
    src_lines = ["| media | real source | real files | FP | FPR |", "|---|---|---|---|---|"]
    for mt, per in rates["source"].items():
        worst = sorted(per.items(), key=lambda kv: (-kv[1]["fpr"], -kv[1]["n_real"]))
        n_over = sum(1 for _, s in per.items() if s["fpr"] > TARGET_FPR)
        src_lines.append(f"| {mt} | *{len(per)} real sources, {n_over} above 5 %* | | | |")
        for s, st in worst:
            if st["fp"]:
                src_lines.append(f"| {mt} | {s} | {st['n_real']} | {st['fp']} "
                                 f"| {f(st['fpr'])} |")
    return "\n".join(lines) + "\n\nReal sources with false positives (the rest have none):\n\n" \
        + "\n".join(src_lines) + "\n"
