"""A speech model fitted on every source, judged with each file scored by a model that did
not see its source.

Once the sources kept out of training are trained on too, no never-seen speech is left; what
is left is the run's own out-of-fold scores (``antifake train ... --out DIR`` writes them to
``DIR/evaluation.json``). This prints, from those:

1. rates by seconds of sound (under 2 s, the detector's ``short_clip``, and longer) at the
   run's line, and a line per clip length (cut at 1, 1.5, 2 and 3 s; each line fitted like
   the shipped one, nested: without the judged file's source) against the one line;
   then what abstaining on clips under 0.5 / 0.75 / 1 / 1.5 s of sound would buy: the share
   of files not judged, real FPR over the judged ones, TPR over every synthetic file (a
   clip not judged is a clip not caught), and real sources above 5 % among judged files;
2. with ``--against OLD/evaluation.json --against-model MODELS_DIR --unseen <manifests>``,
   the same files under an older model: its out-of-fold scores on the sources it was fitted
   on, and on the ``--unseen`` manifests' sources (which it never saw) the scores
   ``bench/compare_speech_models.py --model MODELS_DIR <unseen manifests>`` dumped for it;
   with ``--against`` alone, an older run over the same files (its out-of-fold scores);
3. with ``--against`` and ``--split-at OTHER/evaluation.json`` (two runs over the same
   files), AUC / TPR at the 5 % line of both runs' fused scores, of their CNNs' held-out
   scores alone and of the mean of the two CNNs' logits, on the files OTHER scored, on the
   rest and on all (e.g. the sources an older CNN was trained on, and those it never saw).

    PYTHONPATH=src python bench/speech_all_sources.py --media-root var/corpus \\
        --run var/speech-model-all/evaluation.json \\
        --against var/speech-model-t1s3/evaluation.json --against-model var/models-t1s3 \\
        --unseen $U -- $M $U
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from compare_speech_models import _scores_key  # noqa: E402
from eval_speech_duration import cached_seconds, two_lines  # noqa: E402

from antifake.training.audio import AudioItem, load_audio_items  # noqa: E402
from antifake.training.metrics import roc_auc, sigmoid, tpr_at_fpr  # noqa: E402
from antifake.training.speech_model import operating_threshold  # noqa: E402

CUTS = (1.0, 1.5, 2.0, 3.0)
ABSTAIN_CUTS = (0.5, 0.75, 1.0, 1.5)


def load_run(run_json: Path, manifests: list[Path], media_root: Path
             ) -> tuple[dict, list[AudioItem], np.ndarray, np.ndarray]:
    """A run's ``evaluation.json``, its files' items in the run's order, and their labels
    (True: synthetic) and sources."""
    run = json.loads(run_json.read_text())
    by_path = {str(it.path): it for it in load_audio_items(manifests, media_root)}
    items = [by_path[k] for k in run["files"]]
    return (run, items, np.array([it.is_ai for it in items]),
            np.array([it.source for it in items]))


def real_sources_above(flag: np.ndarray, src: np.ndarray, real: np.ndarray) -> int:
    """How many sources have over 5 % of their ``real`` files flagged."""
    return sum(1 for s in set(src[real]) if flag[(src == s) & real].mean() > 0.05)


def _fused(run: dict) -> dict[str, np.ndarray]:
    return {c: sigmoid(np.asarray(v)) for c, v in run["whisper"]["fused_oof"].items()}


def _rates(y: np.ndarray, src: np.ndarray, p: np.ndarray, t: np.ndarray | float) -> str:
    """TPR / real FPR / real sources with over 5 % of their files at or above ``t``."""
    flag = p >= t
    return (f"{flag[y].mean():.3f} / {100 * flag[~y].mean():.1f} % / "
            f"{real_sources_above(flag, src, ~y)}")


def by_length(y: np.ndarray, src: np.ndarray, probs: dict[str, np.ndarray],
              secs: dict[str, np.ndarray], thr: float) -> None:
    print(f"By seconds of sound, at the run's line {thr:.3f}:\n\n| condition | seconds | real "
          "| real FPR | synthetic | TPR | AUC |\n|---|---|---|---|---|---|---|")
    for c, p in probs.items():
        for name, m in (("under 2", secs[c] < 2.0), ("2 and more", secs[c] >= 2.0)):
            print(f"| {c} | {name} | {int((m & ~y).sum())} | {100 * (p[m & ~y] >= thr).mean():.1f}"
                  f" % | {int((m & y).sum())} | {(p[m & y] >= thr).mean():.3f} | "
                  f"{roc_auc(y[m], p[m]):.3f} |")
    print("\nOne line against a line per clip length, nested by source (TPR / real FPR / "
          "real sources above 5 %):\n\n| cut (s) | " + " | ".join(probs) + " |\n|---|"
          + "---|" * len(probs))
    sources = sorted(set(src))

    def lines(excl: str, cut: float | None) -> tuple[float, float]:
        """(short, long) lines fitted without source ``excl``; one line for no cut."""
        if cut is None:
            t = operating_threshold({c: p[~y & (src != excl)] for c, p in probs.items()})
            return t, t
        return two_lines(y, src, probs, secs, cut, exclude=excl)

    for cut in (None, *CUTS):
        nested = {s: lines(s, cut) for s in sources}
        cells = []
        for c, p in probs.items():
            long_ = secs[c] >= (cut or 0.0)
            t = np.array([nested[s][int(k)] for s, k in zip(src, long_, strict=True)])
            cells.append(_rates(y, src, p, t))
        print(f"| {'one line' if cut is None else f'{cut:g}'} | " + " | ".join(cells) + " |")


def abstaining(y: np.ndarray, src: np.ndarray, probs: dict[str, np.ndarray],
               secs: dict[str, np.ndarray], thr: float) -> None:
    """What refusing to judge clips shorter than a cut would buy at the run's line."""
    print("\nAbstaining on short clips at the run's line (not judged: real / synthetic; real "
          "FPR of judged; TPR of all synthetic; real sources above 5 % of judged):\n\n"
          "| under (s) | " + " | ".join(probs) + " |\n|---|" + "---|" * len(probs))
    for cut in (0.0, *ABSTAIN_CUTS):
        cells = []
        for c, p in probs.items():
            judged = secs[c] >= cut
            flag = (p >= thr) & judged
            over = real_sources_above(flag, src, ~y & judged)
            cells.append(f"{100 * (~judged & ~y).sum() / (~y).sum():.1f} % / "
                         f"{100 * (~judged & y).sum() / y.sum():.1f} %; "
                         f"{100 * flag[~y & judged].mean():.1f} %; {flag[y].mean():.3f}; "
                         f"{over} of {len(set(src[~y & judged]))}")
        print(f"| {'none' if cut == 0.0 else f'{cut:g}'} | " + " | ".join(cells) + " |")


def against(run: dict, y: np.ndarray, src: np.ndarray, probs: dict[str, np.ndarray],
            old_json: Path, models_dir: str | None, unseen: list[Path], cache: Path) -> None:
    old = json.loads(old_json.read_text())
    seen: dict = {"file": []}
    if unseen:
        # where compare_speech_models keeps a model's scores (beside its --cache)
        dump = cache.parent / f"compare-speech-{_scores_key(str(models_dir), unseen)}.json"
        if not dump.exists():
            raise SystemExit(f"no scores of {models_dir} on the unseen manifests: run "
                             "bench/compare_speech_models.py --model it on them first")
        seen = json.loads(dump.read_text())
    index = {f: i for i, f in enumerate(run["files"])}
    missing = [f for f in old["files"] if f not in index]
    if missing:
        raise SystemExit(f"{old_json} scored files this run does not have, e.g. {missing[0]}")
    rows = [index[f] for f in old["files"]] + [index[f] for f in seen["file"]]
    if sorted(rows) != list(range(len(run["files"]))):
        raise SystemExit("the older run and the unseen files do not make up this run's files")
    yy, ss = y[rows], src[rows]
    print(f"\nEvery file scored by a model that did not see its source ({len(rows)} files, "
          f"{len(set(ss))} sources, {len(set(ss[~yy]))} with real speech): AUC / TPR at the "
          "5 % line / TPR / real FPR / real sources above 5 % at each own line "
          f"({old['threshold']:.3f} / {run['threshold']:.3f})\n\n| condition | {old_json} "
          f"| {'this run'} |\n|---|---|---|")
    olds = _fused(old)
    for c, p in probs.items():
        cells = []
        unseen_scores = np.asarray(seen.get(c, []), dtype=float)
        for q, t in ((np.concatenate([olds[c], unseen_scores]), old["threshold"]),
                     (p[rows], run["threshold"])):
            cells.append(f"{roc_auc(yy, q):.3f} / {tpr_at_fpr(yy, q, 0.05):.3f} / "
                         + _rates(yy, ss, q, t))
        print(f"| {c} | " + " | ".join(cells) + " |")
    part = np.arange(len(old["files"]))
    print(f"\nOn the older run's own {len(part)} files (AUC / TPR at the 5 % line):\n\n"
          "| condition | older | this run |\n|---|---|---|")
    for c, p in probs.items():
        q, r = olds[c], p[rows][part]
        print(f"| {c} | {roc_auc(yy[part], q):.3f} / {tpr_at_fpr(yy[part], q, 0.05):.3f} | "
              f"{roc_auc(yy[part], r):.3f} / {tpr_at_fpr(yy[part], r, 0.05):.3f} |")


def split_at(run: dict, probs: dict[str, np.ndarray], old_json: Path, split_json: Path,
             y: np.ndarray) -> None:
    """Both runs' fused and CNN scores on ``split_json``'s files, on the rest, and on all."""
    old = json.loads(old_json.read_text())
    if old["files"] != run["files"]:
        raise SystemExit("--split-at compares two runs over the same files in the same order")
    inside = set(json.loads(split_json.read_text())["files"])
    part = np.array([f in inside for f in run["files"]])
    cnn_new, cnn_old = (r["whisper"]["component_oof"]["cnn"] for r in (run, old))
    print(f"\nSplit at {split_json} (AUC / TPR at the 5 % line; its {int(part.sum())} files, "
          f"then the other {int((~part).sum())}, then all):\n\n| condition | scores | its files "
          "| the rest | all |\n|---|---|---|---|---|")
    olds = _fused(old)
    for c, p in probs.items():
        rows = {"fused, this run": p, "fused, older run": olds[c],
                "CNN, this run": np.asarray(cnn_new[c]), "CNN, older run": np.asarray(cnn_old[c]),
                "mean of both CNNs": (np.asarray(cnn_new[c]) + np.asarray(cnn_old[c])) / 2}
        for name, q in rows.items():
            cells = [f"{roc_auc(y[m], q[m]):.3f} / {tpr_at_fpr(y[m], q[m], 0.05):.3f}"
                     for m in (part, ~part, np.ones_like(part))]
            print(f"| {c} | {name} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path("var/cache/speech-waves"))
    ap.add_argument("--run", type=Path, required=True, help="the run's evaluation.json")
    ap.add_argument("--against", type=Path, help="an older run's evaluation.json")
    ap.add_argument("--against-model", help="the older run's models folder")
    ap.add_argument("--unseen", type=Path, nargs="*", default=[],
                    help="the manifests the older run did not train on")
    ap.add_argument("--split-at", type=Path,
                    help="a run's evaluation.json: compare both runs on its files and the rest")
    ap.add_argument("manifests", type=Path, nargs="+", help="every manifest of the run")
    args = ap.parse_args()
    run, _, y, src = load_run(args.run, args.manifests, args.media_root)
    probs = _fused(run)
    secs = cached_seconds(run["files"], args.cache, list(probs))
    by_length(y, src, probs, secs, float(run["threshold"]))
    abstaining(y, src, probs, secs, float(run["threshold"]))
    if args.against:
        if bool(args.against_model) != bool(args.unseen):
            raise SystemExit("--against-model and --unseen go together")
        against(run, y, src, probs, args.against, args.against_model, args.unseen,
                args.cache)
        if args.split_at:
            split_at(run, probs, args.against, args.split_at, y)
    elif args.split_at:
        raise SystemExit("--split-at needs --against")


if __name__ == "__main__":
    main()
