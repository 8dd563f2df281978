"""Training data for the ``synthetic_speech`` detector: audio manifests, codec laundering
applied to real and synthetic speech alike, and a waveform cache.

Real speech in the corpus is mostly 8-16 kHz FLAC/MP3 test recordings and synthetic speech
22-24 kHz WAV demo outputs: a model can separate them by sample rate or codec and learn
nothing about voices. Every file is therefore decoded to 16 kHz mono and put through the
same set of codec conditions (:data:`CONDITIONS`), and the features
(:mod:`antifake.detectors.synthetic_speech.features`) trim end silences and add a noise
floor, so that digital silence cannot give synthetic files away either.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from antifake.config import Limits
from antifake.detectors.synthetic_speech.features import SAMPLE_RATE, trim_silence
from antifake.media.audio import read_audio
from antifake.media.sniff import sniff_file

log = logging.getLogger(__name__)

# original: decoded and resampled to 16 kHz; mp3_64k / opus_32k / aac_64k: through that
# encoder and back (the formats of re-shared clips); band8k: telephone band (16 -> 8 ->
# 16 kHz), which real test recordings often are.
CONDITIONS = ("original", "mp3_64k", "opus_32k", "aac_64k", "band8k")
MAX_SECONDS = 12.0  # per file: enough windows, bounded cache


@dataclass(frozen=True)
class AudioItem:
    """One labelled audio file of a manifest."""

    path: Path
    label: str  # the manifest's label, e.g. real_speech, ai_speech_tacotron2
    source: str  # source repository: the unit of every split
    is_ai: bool
    family: str  # generator family for AI speech ("" for real)


def speech_label(label: str) -> tuple[bool, str] | None:
    """(is_ai, family) for a speech label, or None for labels the detector is not about
    (music, singing, images, video)."""
    if label == "real_speech":
        return False, ""
    if label.startswith("ai_speech_"):
        return True, label[len("ai_speech_"):]
    return None


def load_audio_items(manifests: Sequence[Path], media_root: Path) -> list[AudioItem]:
    """Speech rows of the manifests whose file exists under ``media_root``."""
    items: list[AudioItem] = []
    missing = 0
    for manifest in manifests:
        with open(manifest, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                lab = speech_label(row.get("label", ""))
                if lab is None:
                    continue
                path = media_root / row["file"]
                if not path.is_file():
                    missing += 1
                    continue
                items.append(AudioItem(path, row["label"], row.get("source_repo", "?"), *lab))
    if missing:
        log.warning("%d speech files listed but absent under %s", missing, media_root)
    return items


def _encode_decode(wave: np.ndarray, codec: str, fmt: str, bit_rate: int,
                   rate: int) -> np.ndarray:
    """``wave`` (mono float32 at SAMPLE_RATE) through ``codec`` at ``bit_rate`` and back."""
    pcm = np.clip(wave, -1, 1)
    resample_in = av.AudioResampler(format="s16" if codec == "libmp3lame" else "fltp",
                                     layout="mono", rate=rate)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=rate)
        stream.bit_rate = bit_rate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((pcm * 32767).astype(np.int16)[None, :],
                                           format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = None
        for conv in resample_in.resample(frame) + resample_in.resample(None):
            for packet in stream.encode(conv):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    back = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    parts: list[np.ndarray] = []
    with av.open(buf, "r") as inp:
        for fr in inp.decode(audio=0):
            parts.extend(o.to_ndarray().reshape(-1) for o in back.resample(fr))
        parts.extend(o.to_ndarray().reshape(-1) for o in back.resample(None))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _resample(wave: np.ndarray, src: int, dst: int) -> np.ndarray:
    frame = av.AudioFrame.from_ndarray(wave.astype(np.float32)[None, :], format="flt",
                                       layout="mono")
    frame.sample_rate = src
    rs = av.AudioResampler(format="flt", layout="mono", rate=dst)
    parts = [o.to_ndarray().reshape(-1) for o in rs.resample(frame) + rs.resample(None)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def apply_condition(wave: np.ndarray, condition: str) -> np.ndarray:
    """``wave`` (mono float32, 16 kHz) after one of :data:`CONDITIONS`."""
    if condition == "original":
        return wave
    if condition == "mp3_64k":
        return _encode_decode(wave, "libmp3lame", "mp3", 64_000, SAMPLE_RATE)
    if condition == "opus_32k":
        return _encode_decode(wave, "libopus", "ogg", 32_000, 48_000)
    if condition == "aac_64k":
        return _encode_decode(wave, "aac", "adts", 64_000, SAMPLE_RATE)
    if condition == "band8k":
        return _resample(_resample(wave, SAMPLE_RATE, 8_000), 8_000, SAMPLE_RATE)
    raise ValueError(f"unknown audio condition {condition!r}")


def _load_one(path: str) -> dict[str, np.ndarray] | str:
    """Every condition of one file (trimmed float16 waves), or an error message."""
    try:
        fmt = sniff_file(Path(path)).format
        wave = read_audio(Path(path), fmt, Limits(), max_seconds=MAX_SECONDS)
        if wave.size < SAMPLE_RATE // 4:
            return f"{path}: under 0.25 s of audio"
        return {c: trim_silence(apply_condition(wave, c)).astype(np.float16)
                for c in CONDITIONS}
    except Exception as exc:  # noqa: BLE001 - a bad corpus file is skipped and logged
        return f"{path}: {exc!r}"


CACHE_FORMAT = 2  # bump when what _load_one returns changes: old entries are then ignored


def _cache_key(path: str) -> str | None:
    """Content hash of the file plus what its cached waves depend on; None if unreadable."""
    h = hashlib.sha1(f"v{CACHE_FORMAT} {MAX_SECONDS} {','.join(CONDITIONS)}\n".encode())
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def build_wave_cache(items: Sequence[AudioItem], out_dir: Path, workers: int = 2) -> Path:
    """Decode and launder every item once into ``out_dir``; return the path of the list's
    index (``out_dir/items-<hash of the path list>.json``) for :func:`load_wave_cache`.

    Incremental: each file's conditions are stored under ``out_dir/files/`` by the hash of
    its content (and of :data:`CONDITIONS`, :data:`MAX_SECONDS`, :data:`CACHE_FORMAT`), so
    adding a manifest decodes only the new files, the same file listed twice is decoded
    once, and an interrupted build keeps what it finished. Files that fail are remembered
    (``<hash>.err``) and skipped with a warning; delete ``out_dir`` to retry everything.
    """
    files_dir = out_dir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    paths = [str(i.path) for i in items]
    keys = [_cache_key(p) for p in paths]
    todo: dict[str, str] = {}  # key -> one path with that content
    for path, key in zip(paths, keys, strict=True):
        if key is not None and key not in todo and not (files_dir / f"{key}.npz").exists() \
                and not (files_dir / f"{key}.err").exists():
            todo[key] = path
    if todo:
        log.info("decoding %d of %d files into %s", len(todo), len(paths), files_dir)
        with ProcessPoolExecutor(max(1, workers)) as pool:
            for n, (key, got) in enumerate(zip(todo, pool.map(_load_one, todo.values(),
                                                              chunksize=4), strict=True)):
                if isinstance(got, str):
                    (files_dir / f"{key}.err").write_text(got, "utf-8")
                else:
                    tmp = files_dir / f"{key}.tmp"
                    with tmp.open("wb") as fh:
                        np.savez(fh, **got)  # type: ignore[arg-type]
                    os.replace(tmp, files_dir / f"{key}.npz")
                if (n + 1) % 200 == 0:
                    log.info("decoded %d / %d", n + 1, len(todo))
    kept, kept_keys = [], []
    for path, key in zip(paths, keys, strict=True):
        if key is None:
            log.warning("skipped %s: cannot be read", path)
        elif (files_dir / f"{key}.npz").exists():
            kept.append(path)
            kept_keys.append(key)
        else:
            log.warning("skipped %s", (files_dir / f"{key}.err").read_text("utf-8"))
    # One index per file list, so runs over different manifests can share the folder.
    digest = hashlib.sha1("\n".join(paths).encode()).hexdigest()[:16]
    index_path = out_dir / f"items-{digest}.json"
    index_path.write_text(json.dumps({
        "requested": paths, "kept": kept, "keys": kept_keys,
        "conditions": list(CONDITIONS)}))
    return index_path


class HalfWaves(Sequence[np.ndarray]):
    """Waves held as float16 (as the cache stores them) and handed out as float32 copies.

    Why: the five conditions of ~8,000 training files hold 12-14 GB as float32 on a 24 GB
    machine; at half that, training with more sources fits. Every item read is exactly
    the float32 array the cache used to be loaded as, so results do not change."""

    def __init__(self, halves: list[np.ndarray] | None = None) -> None:
        self._halves: list[np.ndarray] = list(halves or [])

    def append(self, wave: np.ndarray) -> None:
        self._halves.append(np.asarray(wave, np.float16))

    def __len__(self) -> int:
        return len(self._halves)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return HalfWaves(self._halves[i])
        return self._halves[i].astype(np.float32)

    @property
    def nbytes(self) -> int:
        """Bytes held (float16)."""
        return sum(h.nbytes for h in self._halves)


def load_wave_cache(index_path: Path) -> tuple[list[str], dict[str, Sequence[np.ndarray]]]:
    """(kept file paths, condition -> waves in that order) from the index that
    :func:`build_wave_cache` returned; the waves are :class:`HalfWaves` (float16 in
    memory, float32 when read)."""
    index = json.loads(index_path.read_text())
    kept = index["kept"]
    waves: dict[str, HalfWaves] = {c: HalfWaves() for c in index["conditions"]}
    for key in index["keys"]:
        with np.load(index_path.parent / "files" / f"{key}.npz") as data:
            for c in waves:
                waves[c].append(data[c])
    return kept, dict(waves)
