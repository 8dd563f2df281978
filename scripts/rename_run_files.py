"""Carry a speech run's held-out scores over to files that were relabelled (and so moved).

A manifest row's ``file`` starts with its label's folder (``real_speech/...``), so a
corrected label gives the same audio a new path. A run's JSON (``antifake evaluate
--json-out``, a packaged run's ``evaluation.json``) lists its files by path, and
``antifake train --reuse-oof`` reuses its held-out CNN scores only for the same paths. This
writes a copy of the run whose ``files`` use the new paths, given a two-column TSV of
``old<TAB>new`` manifest ``file`` values; the scores are the same (the audio is), and the
new labels are read from the manifests when the copy is reused.

    python scripts/rename_run_files.py var/speech-eval-09.json var/renames.tsv \\
        --media-root var/corpus --out var/speech-eval-09-relabelled.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_json", type=Path)
    ap.add_argument("renames", type=Path, help="TSV: old manifest file<TAB>new manifest file")
    ap.add_argument("--media-root", type=Path, default=Path("var/corpus"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    run = json.loads(args.run_json.read_text("utf-8"))
    renames = {}
    for line in args.renames.read_text("utf-8").splitlines():
        if line.strip():
            old, new = line.split("\t")
            renames[str(args.media_root / old)] = str(args.media_root / new)
    files = run.get("files") or []
    missing = sorted(set(renames) - set(files))
    if missing:
        print(f"not in {args.run_json}: {', '.join(missing[:5])}", file=sys.stderr)
        return 1
    run["files"] = [renames.get(f, f) for f in files]
    args.out.write_text(json.dumps(run, indent=1) + "\n", "utf-8")
    print(f"{len(renames)} of {len(files)} files renamed -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
