"""Copy-synthesis of real speech with classical vocoders: extra synthetic training windows.

Wang & Yamagishi (ICASSP 2023, "Spoofed training data for speech spoofing countermeasure
can be efficiently created using neural vocoders") trained countermeasures on real speech
re-synthesised by vocoders, labelled synthetic: the two versions share speaker, words,
microphone and room, so the only thing that tells them apart is what the vocoder did, and
the model cannot lean on a source's channel or content. No neural vocoder may be
downloaded here, so the re-synthesis is classical and written in numpy:

- ``griffin_lim``: the STFT magnitude kept, the phase rebuilt by Griffin-Lim (32
  iterations from random phase): the phase incoherence of early TTS and of any
  magnitude-only vocoder;
- ``mel_griffin_lim``: the magnitude squeezed through 80 mel bands (0-8 kHz) and spread
  back over the bins, then Griffin-Lim: the lost harmonic fine structure of a
  mel-spectrogram bottleneck, as in Tacotron-style TTS;
- ``mel_smooth``: the mel-smoothed magnitude with the original phase: only the spectral
  detail is lost.

Applied to the training sources' real speech only (never to a held-out source), before the
codec conditions, so the copies go through the same laundering as everything else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from antifake.detectors.synthetic_speech.features import SAMPLE_RATE

log = logging.getLogger(__name__)

METHODS = ("griffin_lim", "mel_griffin_lim", "mel_smooth")
N_FFT = 512
HOP = 128
N_MELS = 80
GL_ITERATIONS = 32
_WINDOW = np.hanning(N_FFT + 1)[:-1]


def stft(wave: np.ndarray) -> np.ndarray:
    """(frames, N_FFT//2+1) complex STFT, Hann window, hop :data:`HOP`, edges padded."""
    x = np.pad(np.asarray(wave, np.float64), (N_FFT // 2, N_FFT // 2 + HOP))
    n = 1 + (x.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    return np.fft.rfft(x[idx] * _WINDOW, axis=1)


def istft(spec: np.ndarray, length: int) -> np.ndarray:
    """Inverse of :func:`stft` by weighted overlap-add, cut to ``length`` samples."""
    frames = np.fft.irfft(spec, n=N_FFT, axis=1) * _WINDOW
    total = N_FFT + HOP * (len(frames) - 1)
    out = np.zeros(total)
    norm = np.zeros(total)
    for k, fr in enumerate(frames):
        out[k * HOP:k * HOP + N_FFT] += fr
        norm[k * HOP:k * HOP + N_FFT] += _WINDOW ** 2
    out /= np.maximum(norm, 1e-8)
    return out[N_FFT // 2:N_FFT // 2 + length]


@lru_cache(maxsize=1)
def mel_matrix() -> np.ndarray:
    """(N_MELS, N_FFT//2+1) triangular mel filters over 0-8 kHz (HTK mel scale)."""
    def mel(f: np.ndarray) -> np.ndarray:
        return 2595 * np.log10(1 + f / 700)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700 * (10 ** (m / 2595) - 1)

    bins = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = hz(np.linspace(0, mel(np.array(SAMPLE_RATE / 2)), N_MELS + 2))
    fb = np.zeros((N_MELS, bins.size))
    for b in range(N_MELS):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        fb[b] = np.maximum(0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return fb


def griffin_lim(magnitude: np.ndarray, length: int, rng: np.random.Generator,
                iterations: int = GL_ITERATIONS) -> np.ndarray:
    """A wave whose STFT magnitude approaches ``magnitude``, phase found by Griffin-Lim."""
    phase = np.exp(2j * np.pi * rng.random(magnitude.shape))
    wave = istft(magnitude * phase, length)
    for _ in range(iterations):
        spec = stft(wave)[:len(magnitude)]
        phase = np.exp(1j * np.angle(spec))
        wave = istft(magnitude * phase, length)
    return wave


def mel_smoothed(magnitude: np.ndarray) -> np.ndarray:
    """The magnitude through :data:`N_MELS` mel bands and back: each band's mean power,
    spread over its bins by the same triangles normalised to sum to one per bin, i.e. a
    smooth envelope without the harmonic fine structure (no pseudo-inverse: its negative
    lobes would add ripple of their own)."""
    fb = mel_matrix()
    band_power = (magnitude ** 2 @ fb.T) / np.maximum(fb.sum(axis=1), 1e-9)
    spread = fb / np.maximum(fb.sum(axis=0, keepdims=True), 1e-9)
    return np.sqrt(band_power @ spread)


def copy_synthesise(wave: np.ndarray, method: str, rng: np.random.Generator) -> np.ndarray:
    """``wave`` (16 kHz mono) re-synthesised by ``method`` (one of :data:`METHODS`), at the
    same length and RMS level, float32."""
    x = np.asarray(wave, np.float64)
    spec = stft(x)
    mag = np.abs(spec)
    if method == "griffin_lim":
        out = griffin_lim(mag, x.size, rng)
    elif method == "mel_griffin_lim":
        out = griffin_lim(mel_smoothed(mag), x.size, rng)
    elif method == "mel_smooth":
        out = istft(mel_smoothed(mag) * np.exp(1j * np.angle(spec)), x.size)
    else:
        raise ValueError(f"unknown copy-synthesis method {method!r}")
    rms_in = float(np.sqrt(np.mean(x ** 2)))
    rms_out = float(np.sqrt(np.mean(out ** 2))) or 1.0
    return (out * (rms_in / rms_out)).astype(np.float32)


def _one(args: tuple[int, np.ndarray, tuple[str, ...], tuple[str, ...]]
         ) -> dict[str, list[np.ndarray]]:
    from antifake.detectors.synthetic_speech.features import trim_silence
    from antifake.training.audio import apply_condition

    seed, wave, methods, conditions = args
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {c: [] for c in conditions}
    for m in methods:
        synth = copy_synthesise(wave, m, rng)
        for c in conditions:
            out[c].append(trim_silence(apply_condition(synth, c)).astype(np.float16))
    return out


def build_copies(keys: Sequence[str], real: Sequence[bool], originals: Sequence[np.ndarray],
                 conditions: Sequence[str], cache_dir: Path, methods: Sequence[str] = METHODS,
                 workers: int = 2) -> dict[str, list[list[np.ndarray]]]:
    """condition -> per item the copies of its real speech (one per method; none for
    synthetic items), cached in ``cache_dir/copy-synthesis.npz`` for the same files."""
    index_path = cache_dir / "copy-synthesis.json"
    data_path = cache_dir / "copy-synthesis.npz"
    want = {"keys": list(keys), "methods": list(methods), "conditions": list(conditions)}
    todo = [i for i, r in enumerate(real) if r]
    if not (index_path.exists() and json.loads(index_path.read_text()) == want):
        jobs = [(i, originals[i].astype(np.float32), tuple(methods), tuple(conditions))
                for i in todo]
        with ProcessPoolExecutor(max(1, workers)) as pool:
            done = list(pool.map(_one, jobs, chunksize=4))
        arrays = {f"{c}/{i}/{k}": w for i, got in zip(todo, done, strict=True)
                  for c, ws in got.items() for k, w in enumerate(ws)}
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(data_path, **arrays)  # type: ignore[arg-type]
        index_path.write_text(json.dumps(want))
        log.info("copy-synthesised %d real files x %d methods", len(todo), len(methods))
    data = np.load(data_path)
    copies: dict[str, list[list[np.ndarray]]] = {c: [[] for _ in keys] for c in conditions}
    for c in conditions:
        for i in todo:
            copies[c][i] = [data[f"{c}/{i}/{k}"].astype(np.float32)
                            for k in range(len(methods))]
    return copies
