"""Detector registry, in the spirit of timm's model registry.

Detectors register a factory under a name with :func:`register_detector`; the engine, CLI
and API look them up by name. Detector modules are imported lazily by
:func:`ensure_builtin_detectors` so that importing antifake stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from antifake.detectors.base import Detector
from antifake.errors import AntifakeError, ErrorCode

# Modules whose import registers the built-in detectors. Later issues append here.
BUILTIN_DETECTOR_MODULES: list[str] = [
    "antifake.detectors.c2pa",
    "antifake.detectors.watermark",
    "antifake.detectors.metadata",
    "antifake.detectors.temporal",
    "antifake.detectors.splicing",
    "antifake.detectors.forensic_image",
    "antifake.detectors.semantic_clip",
    "antifake.detectors.synthetic_speech",
]


@dataclass(frozen=True)
class DetectorEntry:
    name: str
    factory: Callable[..., Detector]
    default: bool  # run when the request names no detectors
    description: str


_REGISTRY: dict[str, DetectorEntry] = {}
_loaded = False

T = TypeVar("T")


def register_detector(
    name: str, *, default: bool = True, description: str = ""
) -> Callable[[T], T]:
    """Class decorator registering a detector factory under ``name``."""

    def decorate(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name].factory is not cls:
            raise ValueError(f"detector {name!r} registered twice")
        doc = description or (getattr(cls, "__doc__", "") or "").strip().splitlines()[0:1]
        _REGISTRY[name] = DetectorEntry(
            name=name,
            factory=cls,  # type: ignore[arg-type]
            default=default,
            description=doc if isinstance(doc, str) else (doc[0] if doc else ""),
        )
        return cls

    return decorate


def ensure_builtin_detectors() -> None:
    """Import the built-in detector modules once (each registers itself)."""
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_DETECTOR_MODULES:
        importlib.import_module(module)
    _loaded = True


def available_detectors() -> dict[str, DetectorEntry]:
    """All registered detectors by name."""
    ensure_builtin_detectors()
    return dict(sorted(_REGISTRY.items()))


def default_detector_names() -> list[str]:
    return [n for n, e in available_detectors().items() if e.default]


def create_detector(name: str, **config: Any) -> Detector:
    """Instantiate the detector registered as ``name``."""
    entries = available_detectors()
    if name not in entries:
        raise AntifakeError(
            ErrorCode.INVALID_REQUEST,
            f"unknown detector {name!r}; available: {', '.join(entries)}",
        )
    return entries[name].factory(**config)
