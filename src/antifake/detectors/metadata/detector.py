"""Generator traces in metadata (PNG text chunks, EXIF, XMP, IPTC, container tags).

Driven by ``signatures.json`` (schema in README.md) so adding a generator is a data change.
Metadata is attacker-controlled: anyone can write or strip it, so results are never
decisive and camera EXIF is never read as a sign of authenticity.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar, Literal

from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.generators import OTHER_AI, family_for
from antifake.media.types import Media, MediaType
from antifake.results import DetectorKind, DetectorResult, GeneratorGuess

Strength = Literal["declared", "structured", "name"]
STRENGTH_SCORES: dict[str, float] = {"declared": 0.95, "structured": 0.95, "name": 0.85}
# Regexes run on at most this much of each value: metadata is capped upstream (Limits),
# but a single field must not make matching slow.
MAX_VALUE_CHARS = 256 * 1024
EXCERPT_CHARS = 100


@dataclass(frozen=True)
class Signature:
    """One entry of signatures.json."""

    id: str
    description: str
    strength: Strength
    fields: tuple[str, ...]
    regex: re.Pattern[str] | None = None
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    name_regex: re.Pattern[str] | None = None
    generator: str | None = None
    family: str | None = None

    def applies_to(self, field: str) -> bool:
        return any(fnmatchcase(field, pattern) for pattern in self.fields)

    def match(self, value: str) -> tuple[str, str | None] | None:
        """``(excerpt, captured generator name)`` when ``value`` matches, else None."""
        low = value.lower()
        if self.all and not all(s.lower() in low for s in self.all):
            return None
        if self.any and not any(s.lower() in low for s in self.any):
            return None
        anchor = 0
        if self.regex is not None:
            found = self.regex.search(value)
            if found is None:
                return None
            anchor = found.start()
        name = None
        if self.name_regex is not None:
            named = self.name_regex.search(value)
            if named is not None:
                name = named.group("name").strip() or None
                if self.regex is None and not self.all and not self.any:
                    anchor = named.start()
            elif self.regex is None and not self.all:
                return None  # a name-only signature that found no name
        start = max(0, anchor - 20)
        excerpt = " ".join(value[start : start + EXCERPT_CHARS].split())
        return excerpt, name


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE) if pattern else None


def parse_signatures(raw: dict[str, Any]) -> list[Signature]:
    """Validate and compile the signatures.json document."""
    out = []
    for row in raw["signatures"]:
        strength = row["strength"]
        if strength not in STRENGTH_SCORES:
            raise ValueError(f"signature {row.get('id')!r}: unknown strength {strength!r}")
        if not (row.get("regex") or row.get("all") or row.get("any") or row.get("name_regex")):
            raise ValueError(f"signature {row['id']!r} has no condition")
        out.append(
            Signature(
                id=row["id"],
                description=row.get("description", row["id"]),
                strength=strength,
                fields=tuple(f.lower() for f in row["fields"]),
                regex=_compile(row.get("regex")),
                all=tuple(row.get("all", ())),
                any=tuple(row.get("any", ())),
                name_regex=_compile(row.get("name_regex")),
                generator=row.get("generator"),
                family=row.get("family"),
            )
        )
    return out


@lru_cache(maxsize=1)
def builtin_signatures() -> tuple[Signature, ...]:
    text = resources.files("antifake.detectors.metadata").joinpath("signatures.json")
    return tuple(parse_signatures(json.loads(text.read_text("utf-8"))))


def flatten_metadata(metadata: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(group.key, text)`` pairs; keys lower-cased, nested dicts/lists joined with dots."""
    for key, value in metadata.items():
        path = f"{prefix}.{key}".lower() if prefix else str(key).lower()
        if isinstance(value, dict):
            yield from flatten_metadata(value, path)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    # lists of per-stream tag dicts: keep the key without the index too
                    yield from flatten_metadata(item, path)
                elif item is not None:
                    yield f"{path}.{i}", str(item)[:MAX_VALUE_CHARS]
        elif isinstance(value, bytes):
            yield path, value[:MAX_VALUE_CHARS].decode("utf-8", "replace")
        elif value is not None:
            yield path, str(value)[:MAX_VALUE_CHARS]


@dataclass(frozen=True)
class MetadataMatch:
    signature: Signature
    field: str
    excerpt: str
    name: str | None  # concrete generator/model name captured from the value
    family: str | None

    @property
    def score(self) -> float:
        return STRENGTH_SCORES[self.signature.strength]

    @property
    def generator_name(self) -> str | None:
        if self.signature.generator and self.name:
            return f"{self.signature.generator}, model {self.name}"
        return self.signature.generator or self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "signature": self.signature.id,
            "strength": self.signature.strength,
            "field": self.field,
            "excerpt": self.excerpt,
            "name": self.name,
            "family": self.family,
        }


def find_matches(
    metadata: dict[str, Any], signatures: tuple[Signature, ...] | list[Signature] | None = None
) -> list[MetadataMatch]:
    """Every (field, signature) pair that matches."""
    sigs = builtin_signatures() if signatures is None else signatures
    matches = []
    for field, value in flatten_metadata(metadata):
        if not value.strip():
            continue
        for sig in sigs:
            if not sig.applies_to(field):
                continue
            hit = sig.match(value)
            if hit is None:
                continue
            excerpt, name = hit
            # A captured name (e.g. "flux1-dev.safetensors") can refine the family;
            # otherwise the signature's family, else the family of its generator label.
            family = family_for(name) or sig.family or family_for(sig.generator)
            if family is None and sig.strength == "name":
                family = OTHER_AI  # named a generator we have no family for
            matches.append(MetadataMatch(sig, field, excerpt, name, family))
    return matches


@register_detector("metadata", description="Generator traces in EXIF/XMP/IPTC/PNG/container tags")
class MetadataDetector:
    """Looks for generator signatures in the file's metadata (see signatures.json).

    Declared AI (IPTC DigitalSourceType = trainedAlgorithmicMedia) and generator-specific
    structured blocks (A1111 parameters, ComfyUI graphs...) score 0.95, a generator's name
    in a free-text field 0.85; nothing found is no opinion (``None``). Never decisive.
    """

    name: ClassVar[str] = "metadata"
    kind: ClassVar[DetectorKind] = "provenance"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video", "audio"})
    version: ClassVar[str] = "signatures-1"

    def __init__(self, signatures: list[Signature] | None = None) -> None:
        self.signatures = tuple(signatures) if signatures is not None else builtin_signatures()

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        started = time.perf_counter()
        metadata = media.info.metadata or {}
        matches = find_matches(metadata, self.signatures)
        details: dict[str, Any] = {
            "groups_present": sorted(metadata),
            "matches": [m.to_dict() for m in matches],
        }
        if not matches:
            result = DetectorResult(
                detector=self.name,
                score=None,
                summary="No generator traces in metadata (absence proves nothing)",
                details=details,
            )
        else:
            score = max(m.score for m in matches)
            # Attribution: the strongest match that knows a family; structured blocks and
            # captured model names beat bare declarations.
            with_family = [m for m in matches if m.family]
            top = max(
                with_family or matches,
                key=lambda m: (m.score, m.signature.strength != "declared", m.name is not None),
            )
            generator = (
                GeneratorGuess(family=top.family, probability=score, name=top.generator_name)
                if top.family
                else None
            )
            evidence = [
                f"{m.field} matched {m.signature.id} ({m.signature.description}): "
                f"{m.excerpt!r}"
                for m in matches
            ]
            label = top.generator_name or top.signature.description
            result = DetectorResult(
                detector=self.name,
                score=score,
                summary=f"Metadata names an AI generator: {label} ({len(matches)} trace(s); "
                "metadata can be forged)",
                evidence=evidence,
                details=details,
                generator=generator,
            )
        result.decisive = False  # metadata is attacker-controlled
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result
