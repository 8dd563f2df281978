"""Two synthetic-speech models on the same speech files, at equal false-positive rates.

For a candidate that has no out-of-fold threshold yet (e.g. the final CNN trained on more
sources, before its source folds have run), AUC and the detection rate at the *same*
false-positive rate are what can be compared. Each model is the one selected in a models
folder (``antifake train --install`` layout: ``<dir>/selected`` names a subfolder with
``synthetic_speech.onnx`` / ``.json``); ``shipped`` means the package's own model.

The lines are drawn in sample, on the real files of the given manifests (at most 5 % of
them above the line, and none above it), so they compare models; they are not operating
points.

    PYTHONPATH=src python bench/compare_speech_models.py --media-root var/corpus \
        --model shipped --model var/models-cand08 data/manifests/speech-heldout-4.tsv

``--model oof:<run>/evaluation.json`` stands for a training run's fused out-of-fold scores
(each file scored by the models of the fold that held its source out) and its threshold:
how a model trained *with* these manifests' sources, source-grouped, compares on them with a
model that never saw them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from eval_speech_added import clip_probabilities  # noqa: E402

from antifake import models  # noqa: E402
from antifake.training.metrics import (  # noqa: E402
    roc_auc,
    sigmoid,
    threshold_at_fpr,
    tpr_at_fpr,
)

CONDITIONS = ("original", "mp3_64k", "opus_32k", "aac_64k", "band8k")


def _score(manifests: list[Path], media_root: Path, cache: Path) -> dict[str, list]:
    """Clip probabilities of the selected model for every cached condition of every file."""
    items, probs = clip_probabilities(manifests, media_root, cache, threads=1)
    out: dict[str, list] = {"file": [str(it.path) for it in items],
                            "label": [it.label for it in items],
                            "source": [it.source for it in items],
                            "is_ai": [bool(it.is_ai) for it in items]}
    out.update({c: p.tolist() for c, p in probs.items()})
    from antifake.detectors.synthetic_speech.detector import load_config

    out["ai_threshold"] = [float(load_config()["ai_threshold"])]
    return out


def _oof_scores(run_json: Path, files: list[str]) -> dict[str, list]:
    """A training run's fused out-of-fold probabilities of ``files`` (in that order) under
    every condition, and the run's threshold, shaped like :func:`_score`'s dump."""
    run = json.loads(run_json.read_text())
    if "whisper" not in run:
        raise SystemExit(f"{run_json}: not a Whisper-fused run's evaluation.json")
    index = {f: i for i, f in enumerate(run["files"])}
    missing = [f for f in files if f not in index]
    if missing:
        raise SystemExit(f"{run_json}: {len(missing)} of these files were not in the run, "
                         f"e.g. {missing[0]}")
    rows = [index[f] for f in files]
    out: dict[str, list] = {c: sigmoid(np.asarray(v)[rows]).tolist()
                            for c, v in run["whisper"]["fused_oof"].items()}
    out["ai_threshold"] = [float(run["threshold"])]
    return out


def _real_sources_above(p: np.ndarray, t: float, sources: np.ndarray,
                        real: np.ndarray) -> list[tuple[str, int, int]]:
    """(source, flagged, real files) of every source with over 5 % of its real files at or
    above ``t``."""
    out = []
    for src in sorted(set(sources[real])):
        m = (sources == src) & real
        if (p[m] >= t).mean() > 0.05:
            out.append((src, int((p[m] >= t).sum()), int(m.sum())))
    return out


def _scores_key(models_dir: str, manifests: list[Path]) -> str:
    """Names a model's score dump after what decides the scores: the synthetic_speech.json
    the detector reads with ``models_dir`` as its models dir (version, fusion weights and
    thresholds differ between trainings) and the manifests."""
    with mock.patch.dict(os.environ, {"ANTIFAKE_MODELS_DIR": models_dir}):
        config = models.read_bytes("antifake.detectors.synthetic_speech",
                                   "synthetic_speech.json")
    digest = hashlib.sha1(config)
    for m in manifests:
        digest.update(m.read_bytes())
    return digest.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path("var/cache/speech-waves"))
    ap.add_argument("--model", action="append", required=True,
                    help="'shipped', a models folder, or oof:<a training run's "
                         "evaluation.json> (listed after a model scored here); give two")
    ap.add_argument("--by-length", action="store_true",
                    help="also AUC and caught / flagged at the 5 %% lines for clips with "
                         "under 2 s of sound and for longer ones")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse a model's scores from an earlier run on the same manifests "
                         "when its synthetic_speech.json is byte for byte the same")
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("manifests", nargs="+", type=Path)
    args = ap.parse_args()
    if args.child_out:  # scoring runs in a child: the models folder is read at import
        args.child_out.write_text(json.dumps(_score(args.manifests, args.media_root,
                                                    args.cache)))
        return
    scores = []
    for model in args.model:
        if model.startswith("oof:"):
            if not scores:
                raise SystemExit("list a scored model before an oof: one (it gives the files)")
            scores.append({**{k: scores[0][k] for k in ("file", "label", "source", "is_ai")},
                           **_oof_scores(Path(model[4:]), scores[0]["file"])})
            continue
        env = dict(os.environ)
        if model == "shipped":
            env["ANTIFAKE_MODELS_DIR"] = str(Path(args.cache).parent / "no-models")
        else:
            env["ANTIFAKE_MODELS_DIR"] = model
        key = _scores_key(env["ANTIFAKE_MODELS_DIR"], args.manifests)
        dump = args.cache.parent / f"compare-speech-{key}.json"
        if args.reuse and dump.exists():
            print(f"{model}: scores reused from {dump}", file=sys.stderr)
            scores.append(json.loads(dump.read_text()))
            continue
        subprocess.run([sys.executable, __file__, "--media-root", str(args.media_root),
                        "--cache", str(args.cache), "--model", model, "--child-out",
                        str(dump), *map(str, args.manifests)], check=True, env=env)
        scores.append(json.loads(dump.read_text()))
    y = np.array(scores[0]["is_ai"])
    sources = np.array(scores[0]["source"])
    names = " | ".join(args.model)
    print(f"{int(y.sum())} synthetic files from {len(set(sources[y]))} sources, "
          f"{int((~y).sum())} real from {len(set(sources[~y]))}; models: {names}\n")
    print("| condition | AUC | TPR, <= 5 % of real above the line | TPR, no real above |")
    print("|---|---|---|---|")
    for c in CONDITIONS:
        ps = [np.array(s[c]) for s in scores]
        auc = " / ".join(f"{roc_auc(y, p):.3f}" for p in ps)
        t5 = " / ".join(f"{tpr_at_fpr(y, p, 0.05):.3f}" for p in ps)
        t0 = " / ".join(f"{tpr_at_fpr(y, p, 0.0):.3f}" for p in ps)
        print(f"| {c} | {auc} | {t5} | {t0} |")
    print("\nAt each model's own operating line (its ai_threshold: "
          + " / ".join(f"{s['ai_threshold'][0]:.3f}" for s in scores) + "):\n")
    print("| condition | TPR | real FPR | real sources above 5 % |\n|---|---|---|---|")
    for c in CONDITIONS:
        cells = []
        for s in scores:
            p, t = np.array(s[c]), s["ai_threshold"][0]
            over = len(_real_sources_above(p, t, sources, ~y))
            cells.append((f"{float((p[y] >= t).mean()):.3f}",
                          f"{100 * float((p[~y] >= t).mean()):.1f} %", str(over)))
        print(f"| {c} | " + " | ".join(" / ".join(col) for col in zip(*cells, strict=True))
              + " |")
    for name, s in zip(args.model, scores, strict=True):
        above = _real_sources_above(np.array(s["original"]), s["ai_threshold"][0], sources, ~y)
        listed = ", ".join(f"{src} {k}/{n}" for src, k, n in above)
        print(f"\nreal sources above 5 % (original), {name}: {listed or 'none'}")
    labels = np.array(scores[0]["label"])
    print("\n| label (original condition) | files | sources | flagged as synthetic at each "
          "model's own line |\n|---|---|---|---|")
    for lab in sorted(set(labels), key=lambda name: (-int((labels == name).sum()), name)):
        m = labels == lab
        got = " / ".join(str(int((np.array(s["original"])[m] >= s["ai_threshold"][0]).sum()))
                         for s in scores)
        print(f"| {lab} | {int(m.sum())} | {len(set(sources[m]))} | {got} |")
    print("\n| source (original condition) | synthetic files | caught at the 5 % line |")
    print("|---|---|---|")
    ps = [np.array(s["original"]) for s in scores]
    lines = [threshold_at_fpr(p[~y], 0.05) for p in ps]
    for s in sorted(set(sources[y])):
        m = (sources == s) & y
        caught = " / ".join(str(int((p[m] > t).sum())) for p, t in zip(ps, lines, strict=True))
        print(f"| {s} | {int(m.sum())} | {caught} |")
    if args.by_length:
        by_length(scores, y, args.cache)


def by_length(scores: list[dict[str, list]], y: np.ndarray, cache: Path) -> None:
    """Both models on clips with under 2 s of sound (one repeated window) and on longer
    ones, at the 5 % lines drawn on all real files of each condition."""
    from eval_speech_duration import cached_seconds

    secs = cached_seconds(scores[0]["file"], cache, list(CONDITIONS))
    print("\n| condition | seconds of sound | real / synthetic | AUC | real above the 5 % line "
          "| TPR at the 5 % line |\n|---|---|---|---|---|---|")
    for c in CONDITIONS:
        ps = [np.array(s[c]) for s in scores]
        lines = [threshold_at_fpr(p[~y], 0.05) for p in ps]
        for name, m in (("under 2", secs[c] < 2.0), ("2 and more", secs[c] >= 2.0)):
            auc = " / ".join(f"{roc_auc(y[m], p[m]):.3f}" for p in ps)
            fp = " / ".join(str(int((p[m & ~y] > t).sum())) for p, t in zip(ps, lines,
                                                                         strict=True))
            tpr = " / ".join(f"{float((p[m & y] > t).mean()):.3f}"
                             for p, t in zip(ps, lines, strict=True))
            print(f"| {c} | {name} | {int((m & ~y).sum())} / {int((m & y).sum())} | {auc} "
                  f"| {fp} | {tpr} |")


if __name__ == "__main__":
    main()
