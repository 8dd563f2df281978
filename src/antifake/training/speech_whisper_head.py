"""A small temporal head trained on the frame sequence of the frozen Whisper encoder (the
output of its first block since whisper-0.4, :attr:`HeadConfig.tap`),
the third voice in ``synthetic_speech``'s clip fusion.

Why a head and not only the probe: mean and standard deviation over time throw away how
the encoder's states change from frame to frame, where vocoder and codec-language-model
artefacts sit; two 3-frame convolutions then mean + std pooling keep that, with ~86 k
weights (Kawa et al., Interspeech 2023, trained such classifiers on Whisper features).
A prototype of this recipe (original condition only) on 12 sources in no training
manifest: AUC 0.850 against 0.812 for the probe
(docs/benchmarks.md, "Frozen Whisper encoder features").

Training (CPU, a few minutes a fold): 150-frame (3 s) random crops, each draw under a
random codec condition; classes drawn half and half, sources inside a class by
1/sqrt(files); AdamW, one-cycle LR 2e-3, 2,400 steps of 64 (800 until whisper-0.3); input
standardised per channel with training statistics stored in the model; small Gaussian noise
on the standardised input. Scoring reads the whole sequence (at most
:data:`~antifake.whisper_encoder.MAX_SECONDS`).
Exported as ONNX: input ``frames`` (1, T, 384), output ``logit`` (1,).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from antifake.training.audio import AudioItem

log = logging.getLogger(__name__)

HEAD_FILE = "synthetic_speech_whisper_head.onnx"
CROP = 150  # frames (3 s at 50 frames a second)
CHANNELS = 64


@dataclass
class HeadConfig:
    """Training settings of the Whisper head."""

    # 2400: out of fold (207 sources) fused AUC +0.005 in every condition over 800, and on
    # 107 never-seen sources the same ranking with fewer real files flagged
    # (docs/benchmarks.md, "speech-lcnn-0.7+whisper-0.3")
    steps: int = 2400
    batch: int = 64
    lr: float = 2e-3
    crop: int = CROP
    seed: int = 0
    # Which of the cut encoder's outputs the head reads (0: the convolutional stem, 1: the
    # first block, ...; None: the last block kept, the recipe until whisper-0.3). On 3,100
    # files of 138 never-seen sources a head on block 1 ranked better than one on block 2
    # (AUC 0.896-0.912 vs 0.847-0.887 over the five codec conditions and two seeds;
    # docs/benchmarks.md, "The Whisper head on block 1"), and so did the fused model
    # (docs/benchmarks.md, "speech-lcnn-0.7+whisper-0.4").
    tap: int | None = 1
    # Heads trained from seeds seed, seed + 1, ...; the model averages their logits. One
    # head's never-seen AUC moves by up to 0.03 with the seed alone (docs/benchmarks.md,
    # "The Whisper head on block 1"); an average of a few is steadier for ~2 min each.
    seeds: int = 3

    def tap_index(self, n_blocks: int) -> int:
        """:func:`tap_index` of this config's tap."""
        return tap_index(self.tap, n_blocks)


def tap_index(tap: int | None, n_blocks: int) -> int:
    """Index into :func:`~antifake.whisper_encoder.taps_of`'s list of an encoder cut after
    ``n_blocks`` blocks of the head's input ``tap`` (None: the last block kept)."""
    if tap is None:
        return n_blocks
    if not 0 <= tap <= n_blocks:
        raise ValueError(f"head tap {tap} is not among the taps 0..{n_blocks} of an "
                         f"encoder cut after {n_blocks} blocks")
    return tap


class Sequences:
    """Variable-length (T, 384) float16 frame sequences of many files, stored flat."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self.data = data
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i]:self.offsets[i + 1]]

    @classmethod
    def of(cls, seqs: Sequence[np.ndarray]) -> Sequences:
        lens = np.array([len(s) for s in seqs], np.int64)
        return cls(np.concatenate(list(seqs)).astype(np.float16),
                   np.concatenate([[0], np.cumsum(lens)]))


def frames_cache_path(kept: Sequence[str], cache_dir: Path, n_blocks: int, cond: str,
                      tap: int | None = None) -> Path:
    """Where :func:`fill_frame_cache` caches one condition's frames (keyed by the file list,
    the encoder cut and, when it is not the last block kept, the tap)."""
    key = hashlib.sha1("\n".join(kept).encode()).hexdigest()[:12]
    index = tap_index(tap, n_blocks)
    which = "" if index == n_blocks else f"t{index}"
    return cache_dir / f"speech-whisper-frames-b{n_blocks}p{which}-{key}-{cond}.npz"


def save_frames(path: Path, seqs: Sequences) -> None:
    """Write one condition's frame cache."""
    np.savez(path, data=seqs.data, offsets=seqs.offsets)


def frame_cache_holds(path: Path, n_files: int) -> bool:
    """Whether the frame cache at ``path`` exists and holds ``n_files`` sequences (only its
    offsets are read)."""
    if not path.exists():
        return False
    with np.load(path) as data:
        return len(data["offsets"]) == n_files + 1


def fill_frame_cache(kept: Sequence[str], waves: dict[str, Sequence[np.ndarray]],
                     cache_dir: Path, n_blocks: int, threads: int = 2,
                     tap: int | None = None) -> None:
    """Compute and cache the frames (of tap ``tap``, None: the last block kept) of every
    condition of ``waves`` whose cache is missing (or made for another file count), keeping
    none of them in memory: after this the waves are no longer needed by the head
    (:func:`load_frame_cache`)."""
    from antifake.detectors.synthetic_speech.features import prepare
    from antifake.whisper_encoder import taps_of

    index = tap_index(tap, n_blocks)
    cache_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for cond, ws in waves.items():
        path = frames_cache_path(kept, cache_dir, n_blocks, cond, tap)
        if frame_cache_holds(path, len(ws)):
            continue
        seqs = Sequences.of([taps_of(prepare(w), threads=threads, n_blocks=n_blocks)[index]
                             for w in ws])
        save_frames(path, seqs)
        log.info("whisper frames, %s: %d files, %.0f s so far", cond, len(ws),
                 time.time() - t0)


def load_frame_cache(kept: Sequence[str], conditions: Sequence[str], cache_dir: Path,
                     n_blocks: int, tap: int | None = None) -> dict[str, Sequences]:
    """condition -> the cached frames of ``kept`` (filled by :func:`fill_frame_cache`)."""
    out: dict[str, Sequences] = {}
    for cond in conditions:
        path = frames_cache_path(kept, cache_dir, n_blocks, cond, tap)
        if not frame_cache_holds(path, len(kept)):
            raise FileNotFoundError(f"no frame cache of {len(kept)} files for {cond} in "
                                    f"{cache_dir}: fill_frame_cache first")
        data = np.load(path)
        out[cond] = Sequences(data["data"], data["offsets"])
    return out


def _torch() -> Any:
    import torch

    return torch


def build_head(mean: np.ndarray, std: np.ndarray) -> Any:
    """The head: per-channel standardisation, two conv blocks, mean + std pooling."""
    torch = _torch()
    nn = torch.nn

    class Head(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
            width = len(mean)
            self.conv1 = nn.Conv1d(width, CHANNELS, 3, padding=1)
            self.bn1 = nn.BatchNorm1d(CHANNELS)
            self.conv2 = nn.Conv1d(CHANNELS, CHANNELS, 3, padding=1)
            self.bn2 = nn.BatchNorm1d(CHANNELS)
            self.drop = nn.Dropout(0.3)
            self.out = nn.Linear(2 * CHANNELS, 1)
            self.noise = 0.0

        def forward(self, frames: Any) -> Any:  # (B, T, width) -> (B,)
            x = (frames - self.mean) / self.std
            if self.training and self.noise:
                x = x + self.noise * torch.randn_like(x)
            x = x.transpose(1, 2)
            x = self.drop(torch.relu(self.bn1(self.conv1(x))))
            x = torch.relu(self.bn2(self.conv2(x)))
            pooled = torch.cat([x.mean(2), x.std(2, unbiased=False)], 1)
            return self.out(self.drop(pooled))[:, 0]

    return Head()


def build_ensemble(heads: Sequence[Any]) -> Any:
    """One module whose logit is the mean of ``heads``' logits (same input width)."""
    torch = _torch()
    nn = torch.nn

    class HeadEnsemble(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.heads = nn.ModuleList(heads)
            # the input width, as a single head keeps it (export_head reads it)
            self.register_buffer("mean", heads[0].mean.clone())

        def forward(self, frames: Any) -> Any:  # (B, T, width) -> (B,)
            return torch.stack([head(frames) for head in self.heads]).mean(0)

    return HeadEnsemble()


def _crop(seq: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    if len(seq) < n:
        seq = np.concatenate([seq] * (n // max(1, len(seq)) + 1))
    start = int(rng.integers(0, len(seq) - n + 1))
    return seq[start:start + n]


def crop_batch(frames: dict[str, Any], rows: Sequence[int] | np.ndarray,
               rng: np.random.Generator, n: int) -> np.ndarray:
    """(len(rows), n, width) float32: for each row, ``n`` consecutive frames at a random
    start (a shorter sequence repeated first) under a random condition of ``frames``
    (condition -> per-file sequences)."""
    conds = list(frames)
    return np.stack([_crop(frames[conds[int(rng.integers(len(conds)))]][int(i)], rng, n)
                     for i in rows]).astype(np.float32)


def draw_probabilities(items: Sequence[AudioItem],
                       rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is_ai, draw probability) of each of ``rows``: each class drawn half the time and,
    inside a class, each file by 1/sqrt(files of its source), so the large demo pages do
    not drown the small sources."""
    y = np.array([items[int(i)].is_ai for i in rows])
    per_source: dict[str, int] = defaultdict(int)
    for i in rows:
        per_source[items[int(i)].source] += 1
    w = np.array([1 / np.sqrt(per_source[items[int(i)].source]) for i in rows])
    p = np.zeros(len(rows))
    for c in (False, True):
        if (y == c).any():
            p[y == c] = w[y == c] / w[y == c].sum()
    return y, p / p.sum()


def train_head(items: Sequence[AudioItem], frames: dict[str, Sequences],
               rows: Sequence[int], cfg: HeadConfig | None = None) -> Any:
    """A head trained on ``rows`` under every condition of ``frames`` (with ``cfg.seeds``
    above 1, :func:`build_ensemble` of that many, one a seed)."""
    torch = _torch()
    cfg = cfg or HeadConfig()
    if cfg.seeds < 1:
        raise ValueError(f"the head needs at least one seed, not {cfg.seeds}")
    if cfg.seeds > 1:
        return build_ensemble([train_head(items, frames, rows,
                                          replace(cfg, seed=cfg.seed + k, seeds=1))
                               for k in range(cfg.seeds)])
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    idx = np.asarray(rows)
    conds = list(frames)
    sample = np.concatenate([frames[conds[0]][int(i)] for i in idx[:: max(1, len(idx) // 1500)]])
    model = build_head(sample.astype(np.float32).mean(0),
                       sample.astype(np.float32).std(0) + 1e-3)
    model.noise = 0.05
    y, p = draw_probabilities(items, idx)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
    model.train()
    for _ in range(cfg.steps):
        pick = rng.choice(len(idx), cfg.batch, p=p)
        batch = crop_batch(frames, idx[pick], rng, cfg.crop)
        target = torch.tensor(y[pick].astype(np.float32))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(torch.from_numpy(batch)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model


def score_head(model: Any, seqs: Sequences, rows: Sequence[int]) -> np.ndarray:
    """Logit of every row's whole sequence."""
    torch = _torch()
    out = []
    with torch.no_grad():
        for i in rows:
            s = seqs[int(i)].astype(np.float32)
            if len(s) < 3:
                s = np.concatenate([s] * 3)
            out.append(float(model(torch.from_numpy(s)[None])[0]))
    return np.array(out)


def out_of_fold_logits(items: Sequence[AudioItem], frames: dict[str, Sequences],
                       folds: Sequence[Sequence[int]],
                       cfg: HeadConfig | None = None) -> dict[str, np.ndarray]:
    """condition -> head logit of every item from a head that never saw its source."""
    out = {c: np.zeros(len(items)) for c in frames}
    for k, held in enumerate(folds):
        held_set = set(held)
        model = train_head(items, frames, [i for i in range(len(items)) if i not in held_set],
                           cfg)
        for c, seqs in frames.items():
            out[c][list(held)] = score_head(model, seqs, held)
        log.info("whisper head: fold %d/%d done", k + 1, len(folds))
    return out


def cached_out_of_fold_logits(items: Sequence[AudioItem], kept: Sequence[str],
                              frames: dict[str, Sequences], folds: Sequence[Sequence[int]],
                              cache_dir: Path, n_blocks: int,
                              cfg: HeadConfig | None = None) -> dict[str, np.ndarray]:
    """:func:`out_of_fold_logits`, cached under everything it depends on (files, labels,
    sources, conditions, folds, encoder cut and training settings): training and
    evaluation runs on the same data do not train the fold heads twice."""
    cfg = cfg or HeadConfig()
    key = hashlib.sha1(repr((list(kept), [(i.is_ai, i.source) for i in items], list(frames),
                             [list(f) for f in folds], n_blocks,
                             sorted(cfg.__dict__.items()))).encode()).hexdigest()[:16]
    path = cache_dir / f"speech-whisper-head-oof-{key}.npz"
    if path.exists():
        data = np.load(path)
        if all(c in data for c in frames):
            return {c: data[c] for c in frames}
    out = out_of_fold_logits(items, frames, folds, cfg)
    np.savez(path, **out)  # type: ignore[arg-type]
    return out


def export_head(model: Any, path: Path) -> None:
    """ONNX: input ``frames`` (1, T, width) float32, output ``logit`` (1,)."""
    torch = _torch()
    model.eval()
    dummy = torch.zeros(1, 50, int(model.mean.shape[0]))
    torch.onnx.export(model, (dummy,), str(path), input_names=["frames"],
                      output_names=["logit"], dynamic_axes={"frames": {1: "t"}},
                      opset_version=17, dynamo=False)
