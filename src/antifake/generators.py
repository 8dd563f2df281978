"""Generator families and how names found in files map onto them.

Families are the attribution labels reported in ``generator.family``. Provenance detectors
find free-text names (C2PA claim generators, EXIF Software, PNG chunks); :func:`family_for`
maps such a name to a family using ``generators.json`` (ordered regular expressions), so
adding a generator is a data change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources

UNKNOWN = "unknown"
OTHER_AI = "other_ai"

FAMILIES: tuple[str, ...] = (
    "runway_gen1",
    "runway_gen2",
    "runway_gen3",
    "runway",  # Runway output whose generation is not identified
    "sora",
    "pika",
    "kling",
    "luma",
    "veo",
    "stable_diffusion",
    "midjourney",
    "flux",
    "dalle",
    "firefly",
    "imagen",
    "ideogram",
    OTHER_AI,
    UNKNOWN,
)


# A parent family is reported when its members together carry the evidence but no single
# member does: "Runway, generation not identified" is more useful than "unknown" when
# Gen-1 and Gen-2 split the probability (docs/benchmarks.md, attribution table).
PARENT_FAMILIES: dict[str, tuple[str, ...]] = {
    "runway": ("runway_gen1", "runway_gen2", "runway_gen3"),
}


def resolve_family(probs: Mapping[str, float], unknown_below: float) -> tuple[str, float]:
    """The family to report from attribution probabilities, and its probability.

    The most probable family when its probability is at least ``unknown_below``; else a
    parent family of :data:`PARENT_FAMILIES` whose members together reach it; else
    ``unknown`` (with the top family's probability).

    >>> resolve_family({"runway_gen1": 0.25, "runway_gen2": 0.375, "other_ai": 0.375}, 0.5)
    ('runway', 0.625)
    >>> resolve_family({"pika": 0.45, "other_ai": 0.4, "runway_gen2": 0.15}, 0.5)
    ('unknown', 0.45)
    """
    if not probs:
        return UNKNOWN, 0.0
    top = max(probs, key=lambda k: probs[k])
    if probs[top] >= unknown_below:
        return top, float(probs[top])
    for parent, members in PARENT_FAMILIES.items():
        mass = float(sum(probs.get(m, 0.0) for m in members))
        if mass >= unknown_below:
            return parent, mass
    return UNKNOWN, float(probs[top])


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    raw = json.loads(resources.files("antifake").joinpath("generators.json").read_text("utf-8"))
    out = []
    for row in raw["patterns"]:
        if row["family"] not in FAMILIES:
            raise ValueError(f"generators.json: unknown family {row['family']!r}")
        out.append((re.compile(row["regex"], re.IGNORECASE), row["family"]))
    return out


def family_for(name: str | None) -> str | None:
    """The family a generator/product name belongs to, or None if it names none we know.

    >>> family_for("Runway Gen-3 Alpha")
    'runway_gen3'
    >>> family_for("Adobe Photoshop 25.0") is None
    True
    """
    if not name:
        return None
    for pattern, family in _patterns():
        if pattern.search(name):
            return family
    return None
