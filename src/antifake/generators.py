"""Generator families and how names found in files map onto them.

Families are the attribution labels reported in ``generator.family``. Provenance detectors
find free-text names (C2PA claim generators, EXIF Software, PNG chunks); :func:`family_for`
maps such a name to a family using ``generators.json`` (ordered regular expressions), so
adding a generator is a data change.
"""

from __future__ import annotations

import json
import re
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
