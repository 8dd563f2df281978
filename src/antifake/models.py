"""Trained models a user installed, kept apart from the shipped ones.

``antifake train --install NAME`` copies a training run's files into
``<models dir>/NAME/`` and selects it; ``antifake models list | use NAME | reset`` switch
between such models and the shipped one. The package's own files are never written, so
the shipped model is always one ``antifake models reset`` away (issue 10: ``--install``
used to overwrite them, and only ``git checkout`` undid it).

The models dir is ``$ANTIFAKE_MODELS_DIR``, else ``~/.local/share/antifake/models``; the
selection is the file ``selected`` in it (one name). Detectors and the fusion read their
files through :func:`read_bytes` / :func:`read_text`, which prefer the selected model's
copy and fall back to the package's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from importlib import resources
from pathlib import Path

# Every file a training run produces that the engine reads, and the package holding the
# shipped copy (the Whisper fusion's two files are optional: a CNN-only model has none).
MODEL_FILES: dict[str, str] = {
    "forensic_image.onnx": "antifake.detectors.forensic_image",
    "forensic_image.json": "antifake.detectors.forensic_image",
    "semantic_clip.json": "antifake.detectors.semantic_clip",
    "synthetic_speech.onnx": "antifake.detectors.synthetic_speech",
    "synthetic_speech.json": "antifake.detectors.synthetic_speech",
    "synthetic_speech_whisper.npz": "antifake.detectors.synthetic_speech",
    "synthetic_speech_whisper_head.onnx": "antifake.detectors.synthetic_speech",
    "calibration.json": "antifake",
}
SHIPPED = "shipped"


def models_dir() -> Path:
    """Where user-trained models live."""
    env = os.environ.get("ANTIFAKE_MODELS_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "antifake" / "models"


def selected() -> str:
    """The selected model's name (``shipped`` when none is)."""
    try:
        name = (models_dir() / "selected").read_text("utf-8").strip()
    except OSError:
        return SHIPPED
    return name if name and (models_dir() / name).is_dir() else SHIPPED


def _override(filename: str) -> Path | None:
    name = selected()
    if name == SHIPPED:
        return None
    path = models_dir() / name / filename
    return path if path.is_file() else None


def read_bytes(package: str, filename: str) -> bytes:
    """``filename`` of the selected model, else the shipped one in ``package``."""
    path = _override(filename)
    if path is not None:
        return path.read_bytes()
    return resources.files(package).joinpath(filename).read_bytes()


def read_text(package: str, filename: str) -> str:
    """Text variant of :func:`read_bytes`."""
    return read_bytes(package, filename).decode("utf-8")


def _check_name(name: str) -> str:
    if (not name or name == SHIPPED or name.startswith(".") or "/" in name
            or "\\" in name or name == "selected"):
        raise ValueError(f"invalid model name {name!r} (and {SHIPPED!r} is reserved)")
    return name


def install(run_dir: Path, name: str) -> Path:
    """Copy a training run's model files into the models dir as ``name`` and select it."""
    name = _check_name(name)
    present = [f for f in MODEL_FILES if (run_dir / f).is_file()]
    if not present:
        raise ValueError(f"{run_dir} holds none of {', '.join(MODEL_FILES)}")
    dest = models_dir() / name
    tmp = models_dir() / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in present:
        shutil.copy2(run_dir / f, tmp / f)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    use(name)
    return dest


def use(name: str) -> None:
    """Select an installed model (``shipped`` selects the package's)."""
    if name == SHIPPED:
        reset()
        return
    if not (models_dir() / _check_name(name)).is_dir():
        raise ValueError(f"no installed model {name!r}; see `antifake models list`")
    (models_dir() / "selected").write_text(name + "\n", "utf-8")


def reset() -> None:
    """Go back to the shipped model (installed models stay on disk)."""
    with contextlib.suppress(FileNotFoundError):
        (models_dir() / "selected").unlink()


def list_models() -> list[tuple[str, list[str]]]:
    """``(name, files)`` of the shipped model and every installed one."""
    out = [(SHIPPED, [f for f, pkg in MODEL_FILES.items()
                      if resources.files(pkg).joinpath(f).is_file()])]
    root = models_dir()
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            out.append((d.name, sorted(f.name for f in d.iterdir() if f.name in MODEL_FILES)))
    return out
