"""The frozen GE2E voice encoder of the ``resemblyzer`` wheel as a feature network, for
``bench/eval_speech_encoder.py`` (measured against the speech CNN; not shipped: see
docs/benchmarks.md, "Frozen voice-encoder features").

The weights come inside the registry package (``resemblyzer==0.1.4``, Apache-2.0, file
``resemblyzer/pretrained.pt``, trained by its authors on LibriSpeech + VoxCeleb 1/2 real
speech); they are read here with torch. Only the weight file is read: the package's own
code is not imported (it pulls librosa, scipy and webrtcvad).

The network outputs, per 1.6 s partial utterance, the time mean and standard deviation of
each LSTM layer's hidden states and the speaker embedding (3 x 2 x 256 + 256 = 1,792
values): how a speaker model *trained only on real voices* responds to the clip. Synthetic
voices are smoother and more uniform over time than recorded ones, which shows in those
statistics -- the hypothesis the benchmark tests with a linear probe. The front end below
recomputes the encoder's input (power mel, Slaney scale, librosa's defaults) in numpy.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from antifake.whisper_encoder import slaney_mel_filters

HIDDEN = 256
N_LAYERS = 3
N_FEATURES = N_LAYERS * 2 * HIDDEN + HIDDEN  # 1,792
N_MELS = 40

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
PARTIAL_FRAMES = 160  # 1.6 s, the encoder's training length
TARGET_DBFS = -30.0  # the encoder's volume normalisation (raise only)


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """(N_FFT//2+1, N_MELS) Slaney-normalised triangular mel filters over 0-8 kHz."""
    return slaney_mel_filters(N_FFT, N_MELS, SAMPLE_RATE)


_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def normalize_volume(wave: np.ndarray) -> np.ndarray:
    """Raise quiet audio to -30 dBFS RMS (never lower it), as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    if rms <= 0:
        return wave
    change_db = TARGET_DBFS - 20 * np.log10(rms)
    if change_db <= 0:
        return wave
    return (wave * (10 ** (change_db / 20))).astype(np.float32)


def mel_frames(wave: np.ndarray) -> np.ndarray:
    """(n_frames, 40) power mel frames of a 16 kHz mono wave (centred, zero-padded)."""
    padded = np.pad(wave.astype(np.float32), (N_FFT // 2, N_FFT // 2))
    n = 1 + max(0, padded.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(padded[idx] * _WINDOW, axis=1)) ** 2
    return (spec.astype(np.float32) @ mel_filterbank()).astype(np.float32)


def partials(frames: np.ndarray, hop: int = PARTIAL_FRAMES,
             max_partials: int | None = None) -> np.ndarray:
    """(n, 160, 40) partial utterances ``hop`` frames apart; a clip shorter than one
    partial is repeated to fill it. With ``max_partials`` they are spread evenly over the
    clip (bounded cost on long files)."""
    if frames.shape[0] < PARTIAL_FRAMES:
        reps = -(-PARTIAL_FRAMES // max(1, frames.shape[0]))
        frames = np.tile(frames, (reps, 1))
    starts = list(range(0, frames.shape[0] - PARTIAL_FRAMES + 1, hop))
    if max_partials is not None and len(starts) > max_partials:
        pick = np.linspace(0, len(starts) - 1, max_partials).round().astype(int)
        starts = [starts[i] for i in pick]
    return np.stack([frames[s:s + PARTIAL_FRAMES] for s in starts])


def weights_path() -> Path:
    """The encoder weights inside the installed ``resemblyzer`` wheel."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the voice encoder needs the resemblyzer wheel: "
                           "pip install --no-deps resemblyzer==0.1.4")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the resemblyzer package")
    return path


def build_feature_net() -> Any:
    """torch module: (n, 160, 40) power mel partials -> (n, 1792) statistics."""
    import torch

    nn = torch.nn
    state = torch.load(weights_path(), map_location="cpu", weights_only=False)["model_state"]

    class VoiceStats(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(
                nn.LSTM(N_MELS if i == 0 else HIDDEN, HIDDEN, 1, batch_first=True)
                for i in range(N_LAYERS))
            self.linear = nn.Linear(HIDDEN, HIDDEN)

        def forward(self, mels: Any) -> Any:
            h = mels
            stats = []
            for lstm in self.layers:
                h, _ = lstm(h)
                stats += [h.mean(dim=1), h.std(dim=1)]
            emb = torch.relu(self.linear(h[:, -1]))
            emb = emb / (emb.norm(dim=1, keepdim=True) + 1e-8)
            return torch.cat(stats + [emb], dim=1)

    net = VoiceStats()
    for i, lstm in enumerate(net.layers):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").data.copy_(state[f"lstm.{name}_l{i}"])
    net.linear.weight.data.copy_(state["linear.weight"])
    net.linear.bias.data.copy_(state["linear.bias"])
    return net.eval()


def clip_stats(net: Any, parts: np.ndarray, batch: int = 64) -> np.ndarray:
    """(n, 1792) statistics of ``parts`` (n, 160, 40) with the torch network."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(parts), batch):
            out.append(net(torch.from_numpy(parts[s:s + batch])).numpy())
    return np.concatenate(out)
