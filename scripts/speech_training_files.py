"""List the files a synthetic-speech training run used, with where each comes from.

A run's JSON (``antifake evaluate --json-out`` or ``run_speech_pipeline``'s result) names
the decoded files it kept; this writes one row per file with its manifest, repository,
commit, path, sha1 and label evidence, so the shipped model's training set can be rebuilt
(fetch + ``materialize.py``) without committing any media.

    python scripts/speech_training_files.py var/speech-eval-09.json --media-root var/corpus \\
        --out data/training-files-speech-v0.7.tsv ../shared/corpus/extra-audio-manifest.tsv \\
        <the run's speech manifests: data/manifests/speech-*.tsv but the held-out ones>
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

COLUMNS = ("manifest", "file", "label", "source_repo", "commit", "path_in_repo", "sha1",
           "evidence")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_json", type=Path)
    ap.add_argument("manifests", type=Path, nargs="+")
    ap.add_argument("--media-root", type=Path, default=Path("var/corpus"))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    rows: dict[str, dict[str, str]] = {}
    for manifest in a.manifests:
        with manifest.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                rows.setdefault(str(a.media_root / row["file"]), {**row, "manifest": manifest.name})
    kept = json.loads(a.run_json.read_text())["files"]
    missing = [k for k in kept if k not in rows]
    if missing:
        print(f"{len(missing)} files of the run are in none of the manifests, e.g. {missing[0]}",
              file=sys.stderr)
        return 1
    with a.out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(COLUMNS)
        for k in kept:
            w.writerow([rows[k].get(c, "") for c in COLUMNS])
    print(f"{len(kept)} files from {len({rows[k]['source_repo'] for k in kept})} sources "
          f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
