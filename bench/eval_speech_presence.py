"""How often does the speech-presence gate of ``synthetic_speech`` fire, on speech (it must
not) and on music (it should)? Silero VAD on every file of the manifests, as decoded by the
detector (16 kHz mono, first 600 s), in each codec condition of the speech evaluation.

    PYTHONPATH=src python bench/eval_speech_presence.py --media-root var/corpus \
        ../shared/corpus/extra-audio-manifest.tsv data/manifests/speech-heldout-4.tsv

Groups: real speech, synthetic speech (``ai_speech_*``), singing (``*_singing_*``) and
instrumental or mixed music (``*_music*``). A file is gated (no opinion) when its voiced
seconds are under ``min(MIN_VOICE_S, MIN_VOICE_SHARE x duration)``, the detector's rule.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from antifake.config import Limits
from antifake.detectors.synthetic_speech import presence
from antifake.detectors.synthetic_speech.detector import (
    MAX_ANALYSED_S,
    MIN_VOICE_S,
    MIN_VOICE_SHARE,
)
from antifake.media.audio import read_audio
from antifake.media.sniff import sniff_bytes
from antifake.training.audio import CONDITIONS, apply_condition


def group_of(label: str) -> str:
    """The table row of a manifest label."""
    if "singing" in label:
        return "singing"
    if "music" in label:
        return "music"
    return "real speech" if label.startswith("real") else "synthetic speech"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--media-root", type=Path, required=True)
    ap.add_argument("--conditions", default=",".join(CONDITIONS),
                    help=f"comma-separated, from {', '.join(CONDITIONS)}")
    args = ap.parse_args()
    conditions = [c for c in args.conditions.split(",") if c]
    if not presence.available():
        raise SystemExit(f"Silero VAD not installed: pip install --no-deps {presence.PACKAGE}")

    # (condition, group) -> list of (voiced seconds, duration, source)
    seen: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    sources: dict[str, set[str]] = defaultdict(set)
    failed = 0
    started = time.perf_counter()
    for manifest in args.manifests:
        with manifest.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        for row in rows:
            path = args.media_root / row["file"]
            group = group_of(row["label"])
            try:
                fmt = sniff_bytes(path.read_bytes()[:4096]).format
                wave = read_audio(path, fmt, Limits(), max_seconds=MAX_ANALYSED_S)
            except Exception:  # missing or undecodable: counted, not scored
                failed += 1
                continue
            if wave.size == 0:
                failed += 1
                continue
            sources[group].add(row["source_repo"])
            for condition in conditions:
                heard = wave if condition == "original" else apply_condition(wave, condition)
                probs = presence.speech_probabilities(heard)
                assert probs is not None
                seen[(condition, group)].append(
                    (presence.speech_seconds(probs), heard.size / 16000, row["source_repo"]))
    elapsed = time.perf_counter() - started
    groups = ("real speech", "synthetic speech", "singing", "music")
    print(f"{sum(len(v) for k, v in seen.items() if k[0] == conditions[0])} files "
          f"({failed} unreadable) in {elapsed:.0f} s; sources: "
          + ", ".join(f"{g} {len(sources[g])}" for g in groups))
    print(f"\nrule: no opinion when voiced seconds < min({MIN_VOICE_S} s, "
          f"{MIN_VOICE_SHARE:g} x duration)\n")
    print("| condition | " + " | ".join(f"{g}: no opinion" for g in groups)
          + " | least voiced speech file (s) |")
    print("|---" * (len(groups) + 2) + "|")
    for condition in conditions:
        cells = []
        for group in groups:
            items = seen[(condition, group)]
            gated = [s for s in items if s[0] < min(MIN_VOICE_S, MIN_VOICE_SHARE * s[1])]
            cells.append(f"{len(gated)} / {len(items)}")
        speech = [s[0] for g in groups[:2] for s in seen[(condition, g)]]
        least = f"{min(speech):.2f}" if speech else "-"
        print(f"| {condition} | " + " | ".join(cells) + f" | {least} |")
    for group in groups[:2]:
        gated_by_source: dict[str, int] = defaultdict(int)
        for condition in conditions:
            for voiced, duration, source in seen[(condition, group)]:
                if voiced < min(MIN_VOICE_S, MIN_VOICE_SHARE * duration):
                    gated_by_source[f"{source} ({condition})"] += 1
        if gated_by_source:
            print(f"\n{group} given no opinion, by source and condition: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(gated_by_source.items())))
    music = [s[0] / max(s[1], 1e-6) for s in seen[(conditions[0], "music")]]
    if music:
        print(f"\nmusic, voiced share in the {conditions[0]} condition: median "
              f"{np.median(music):.3f}, 90th percentile {np.percentile(music, 90):.3f}")


if __name__ == "__main__":
    main()
