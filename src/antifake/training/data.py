"""Labelled media lists and source-grouped splits.

Two input layouts are accepted:

* a manifest TSV in the format of ``../shared/corpus/manifest.tsv`` (columns ``file``,
  ``label``, ``source_repo``, ...; ``file`` is relative to the manifest's folder);
* a plain folder ``<root>/<label>/<files>``; every file's source is then its label folder
  plus its first sub-folder if any (``<root>/<label>/<source>/<files>``), because without
  provenance the folder is the best guess of where a file came from.

Labels follow the corpus: ``real_image``, ``real_video``, ``runway_gen1``, ``runway_gen2``,
``other_ai_video_<model>``, ``other_ai_image_<model>``, plus any label starting with
``real`` (authentic) or naming a family of :mod:`antifake.generators`.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from antifake.generators import FAMILIES, OTHER_AI

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif", ".m4v"}

# Corpus model names that map to a family of antifake.generators (everything else: other_ai).
_MODEL_FAMILY = {
    "pika": "pika",
    "sd2": "stable_diffusion",
    "sd": "stable_diffusion",
    "sd15": "stable_diffusion",
    "sd3": "stable_diffusion",
    "sdxl": "stable_diffusion",
    "sdxl_turbo": "stable_diffusion",
    "svd": "stable_diffusion",
    "animatelcm_svd": "stable_diffusion",
    "kling": "kling",
    "luma": "luma",
    "sora": "sora",
    "veo": "veo",
    "flux": "flux",
    "midjourney": "midjourney",
    "gpt4o": "dalle",
    "dalle2": "dalle",
    "nano_banana": "imagen",
    "imagenvideo": "imagen",
    # Labels of the evaluation manifests in data/manifests (none is in a training
    # manifest, so training is unchanged): the same companies' models, named as the
    # engine's metadata rules name them (generators.json: gpt-image and DALL-E -> dalle),
    # and Stable Diffusion releases and SDXL fine-tunes / distillations.
    "gpt_image": "dalle",
    "dalle3": "dalle",
    "imagen": "imagen",
    "sd1": "stable_diffusion",
    "sd14": "stable_diffusion",
    "sd35": "stable_diffusion",
    "sdxl_lightning": "stable_diffusion",
    "ssd1b": "stable_diffusion",
    "juggernautxl": "stable_diffusion",
    "realvisxl": "stable_diffusion",
    "mobiusxl": "stable_diffusion",
    "colorfulxl": "stable_diffusion",
}


@dataclass(frozen=True)
class Item:
    """One labelled file."""

    path: Path
    label: str  # the corpus label, e.g. ``runway_gen2`` or ``other_ai_video_pika``
    source: str  # where it came from (source repository); splits group by this
    sha1: str = ""

    @property
    def is_ai(self) -> bool:
        return not self.label.startswith("real")

    @property
    def media_type(self) -> str:
        """``image`` or ``video``, from the label when it says, else from the suffix."""
        lab = self.label
        if lab.startswith(("other_ai_video_", "runway")) or lab.endswith("_video"):
            return "video"
        if lab.startswith("other_ai_image_") or lab.endswith("_image"):
            return "image"
        return "image" if self.path.suffix.lower() in IMAGE_SUFFIXES else "video"

    @property
    def family(self) -> str:
        """The generator family (``real`` for authentic media)."""
        return family_of_label(self.label)

    @property
    def key(self) -> str:
        """Stable cache key: sha1 when known, else the path."""
        return self.sha1 or str(self.path).replace("/", "_")


def family_of_label(label: str) -> str:
    """Map a corpus label to a generator family, ``real`` for authentic media.

    >>> family_of_label("other_ai_video_pika"), family_of_label("runway_gen2")
    ('pika', 'runway_gen2')
    """
    if label.startswith("real"):
        return "real"
    if label in FAMILIES:
        return label
    for prefix in ("other_ai_video_", "other_ai_image_"):
        if label.startswith(prefix):
            return _MODEL_FAMILY.get(label[len(prefix):], OTHER_AI)
    return OTHER_AI


def load_manifest(path: str | Path, media_roots: Sequence[str | Path] = ()) -> list[Item]:
    """Items of a manifest TSV, or of a ``<label>/<files>`` folder (see module docstring).

    A manifest row's ``file`` is looked up next to the manifest first, then under each of
    ``media_roots`` (where ``materialize.py`` wrote the extra manifests' media); the first
    folder holding it wins, and the manifest's folder is the default when none does.
    """
    path = Path(path)
    if path.is_dir():
        manifest = path / "manifest.tsv"
        return (_load_tsv(manifest, media_roots) if manifest.is_file()
                else _load_folder(path))
    return _load_tsv(path, media_roots)


@dataclass(frozen=True)
class Loaded:
    """Items of several manifests, and what was left out while loading them."""

    items: list[Item]
    missing: list[Item]  # listed, but the file is nowhere to be found
    duplicates: int  # rows whose sha1 an earlier row already had


def load_manifests(paths: Sequence[str | Path],
                   media_roots: Sequence[str | Path] = ()) -> Loaded:
    """Items of every manifest in ``paths``, deduplicated by sha1, present files only.

    Training and evaluation read a list of manifests (the development corpus plus the
    extra video and image manifests); a file listed twice (same sha1) is kept once, under
    its first row, so a clip published on two pages never sits on both sides of a split.
    """
    seen: set[str] = set()
    items: list[Item] = []
    missing: list[Item] = []
    duplicates = 0
    for p in paths:
        for it in load_manifest(p, media_roots):
            if it.sha1 and it.sha1 in seen:
                duplicates += 1
                continue
            if it.sha1:
                seen.add(it.sha1)
            (items if it.path.is_file() else missing).append(it)
    return Loaded(items, missing, duplicates)


def _load_tsv(path: Path, media_roots: Sequence[str | Path] = ()) -> list[Item]:
    items = []
    roots = [path.parent, *(Path(r) for r in media_roots)]
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            rel = row["file"]
            where = next((r / rel for r in roots if (r / rel).is_file()), path.parent / rel)
            items.append(
                Item(
                    path=where,
                    label=row["label"],
                    source=row.get("source_repo") or row["label"],
                    sha1=row.get("sha1", ""),
                )
            )
    return items


def _load_folder(root: Path) -> list[Item]:
    items = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(label_dir.rglob("*")):
            if f.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES or not f.is_file():
                continue
            rel = f.relative_to(label_dir)
            source = f"{label_dir.name}/{rel.parts[0]}" if len(rel.parts) > 1 else label_dir.name
            items.append(Item(path=f, label=label_dir.name, source=source))
    return items


@dataclass(frozen=True)
class Split:
    """One train/test split; ``name`` says which sources were held out."""

    name: str
    train: list[Item]
    test: list[Item]


def leave_one_source_out(items: Sequence[Item]) -> Iterator[Split]:
    """One split per source repository: test on it, train on all the others."""
    for source in sorted({it.source for it in items}):
        yield Split(
            name=source,
            train=[it for it in items if it.source != source],
            test=[it for it in items if it.source == source],
        )


def source_fold(source: str, k: int) -> int:
    """The fold (0..k-1) of ``source`` in :func:`source_kfold`: a hash of its name, so a
    source keeps its fold when others are added or removed."""
    import hashlib

    return int(hashlib.sha1(source.encode()).hexdigest(), 16) % k


def source_kfold(items: Sequence[Item], k: int = 10) -> Iterator[Split]:
    """``k`` splits, each holding out about 1/k of the source repositories (never a file
    without the rest of its source). With many sources this is leave-one-source-out's
    cheaper and slightly stricter sibling: every model misses ~10 % of the sources."""
    sources = sorted({it.source for it in items})
    fold = {s: source_fold(s, k) for s in sources}
    for f in range(k):
        held = {s for s in sources if fold[s] == f}
        if held:
            yield Split(name=f"sources-fold{f}",
                        train=[it for it in items if it.source not in held],
                        test=[it for it in items if it.source in held])


def holdout_split(items: Sequence[Item], test_fraction: float = 0.3, seed: int = 0) -> Split:
    """A single split that holds out whole sources (about ``test_fraction`` of the files).

    Sources are shuffled with ``seed`` and moved to the test side until it holds the
    requested fraction; a source never appears on both sides.
    """
    sources = sorted({it.source for it in items})
    random.Random(seed).shuffle(sources)
    target = test_fraction * len(items)
    held: set[str] = set()
    count = 0
    for source in sources:
        if count >= target:
            break
        held.add(source)
        count += sum(1 for it in items if it.source == source)
    return Split(
        name="holdout:" + ",".join(sorted(held)),
        train=[it for it in items if it.source not in held],
        test=[it for it in items if it.source in held],
    )
