"""User-installed models never overwrite the shipped ones (issue 10)."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from antifake import models
from antifake.cli import main


def _shipped_digest() -> str:
    h = hashlib.sha256()
    for f, pkg in sorted(models.MODEL_FILES.items()):
        path = resources.files(pkg).joinpath(f)
        if path.is_file():  # optional files (the Whisper fusion's) may not be shipped
            h.update(f.encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture()
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANTIFAKE_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_install_use_reset_round_trip(tmp_path: Path, models_dir: Path) -> None:
    before = _shipped_digest()
    run = tmp_path / "run"
    run.mkdir()
    cal = json.loads(models.read_text("antifake", "calibration.json"))
    cal["intercept"] = 7.0  # a recognisably different model
    (run / "calibration.json").write_text(json.dumps(cal))
    models.install(run, "mine")
    assert models.selected() == "mine"
    assert json.loads(models.read_text("antifake", "calibration.json"))["intercept"] == 7.0
    # files the run did not produce still come from the package
    assert models.read_bytes("antifake.detectors.forensic_image", "forensic_image.onnx")
    runner = CliRunner()
    out = runner.invoke(main, ["models", "list"])
    assert out.exit_code == 0 and "* mine" in out.output and "  shipped" in out.output
    assert runner.invoke(main, ["models", "reset"]).exit_code == 0
    assert models.selected() == models.SHIPPED
    assert json.loads(models.read_text("antifake", "calibration.json"))["intercept"] != 7.0
    assert runner.invoke(main, ["models", "use", "mine"]).exit_code == 0
    assert models.selected() == "mine"
    bad = runner.invoke(main, ["models", "use", "nope"])
    assert bad.exit_code == 2 and "no installed model" in bad.output
    assert _shipped_digest() == before  # the package's files were never written


@pytest.mark.parametrize("name", ["", "shipped", "../x", ".hidden", "selected"])
def test_bad_model_names(tmp_path: Path, models_dir: Path, name: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "calibration.json").write_text("{}")
    with pytest.raises(ValueError):
        models.install(run, name)


def test_install_refuses_a_folder_without_model_files(tmp_path: Path, models_dir: Path) -> None:
    with pytest.raises(ValueError, match="holds none"):
        models.install(tmp_path, "empty")
