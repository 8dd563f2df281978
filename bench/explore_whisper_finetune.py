"""Fine-tuning Whisper's second block for synthetic speech: does it carry to sources no model
saw better than the frozen encoder the shipped temporal head reads?

Why: the shipped ``synthetic_speech`` fuses its CNN with a probe and a small temporal head
on the *frozen* output of Whisper tiny.en's second block. In the anti-spoofing literature
the pretrained speech front ends generalise best when they are fine-tuned with the
classifier, not frozen (wav2vec 2.0 / XLS-R + AASIST; Kawa et al., Interspeech 2023, for
Whisper). All of Whisper is too costly to train on 2 CPU cores, but its second block is
small (~1.8 M weights, ~0.3 GMAC per 3 s crop), so its output can be adapted while the
stem and first block stay frozen and are computed once.

Arms, each trained on the same training files (the speech-lcnn-0.7 manifests) and codec
conditions, with the same crops, steps and seed, the head of
:mod:`antifake.training.speech_whisper_head` on top:

* ``frozen``: block 2 frozen (the shipped recipe's input, re-trained here as the baseline);
* ``tuned``: block 2 trained too (AdamW at ``--block-lr``, the head at 2e-3);
* ``block1``: the head on block 1's output, no second block (is block 2 needed at all?);
* ``shipped``: the shipped head (``synthetic_speech_whisper_head.onnx``) for reference.

Then every file of the evaluation manifests (sources in no training manifest) is scored in
the five codec conditions over its whole sequence (at most 12 s), as the detector scores:
AUC per condition and TPR at the line that flags 5 % of those real files (in-sample: it
compares arms, it is not an operating point).

Training data: block 1's output of the first 6 s of every training file (after the
detector's preparation), per training condition, cached in memory as float16; crops of
150 frames (3 s) are drawn from it. (The frozen arm therefore sees block 2 computed on the
crop, where the shipped head was trained on crops of block 2 computed on the whole clip.)

Usage (repo root, venv active; waves cached under ``--cache-dir`` by
:func:`antifake.training.audio.build_wave_cache`, by default where ``antifake train|evaluate
--cache-dir var/cache`` keeps them, so either fills it for the other)::

    PYTHONPATH=src python bench/explore_whisper_finetune.py --media-root var/corpus \\
        --train <the twelve speech-lcnn-0.7 manifests> \\
        --unseen data/manifests/speech-heldout-4.tsv data/manifests/speech-commercial-7.tsv \\
            data/manifests/speech-real-7.tsv data/manifests/speech-commercial-8.tsv \\
            data/manifests/speech-real-8.tsv data/manifests/speech-short-9.tsv \\
            data/manifests/speech-heldout-10.tsv \\
        --steps 1200 --arms frozen tuned block1 shipped
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from antifake.detectors.synthetic_speech.features import prepare
from antifake.training.audio import CONDITIONS, AudioItem, build_wave_cache, load_audio_items
from antifake.training.metrics import roc_auc
from antifake.training.speech_whisper_head import (
    CROP,
    build_head,
    crop_batch,
    draw_probabilities,
)
from antifake.whisper_encoder import N_HEADS, WIDTH, read_ct2, taps_of, weights_path

TRAIN_FRAMES = 300  # 6 s of block-1 output per training file and condition


class WhisperBlock(torch.nn.Module):
    """One pre-norm Whisper encoder block with CTranslate2's fused q/k/v projection."""

    def __init__(self, weights: dict[str, np.ndarray], index: int) -> None:
        super().__init__()

        def p(key: str) -> torch.nn.Parameter:
            arr = np.asarray(weights[f"encoder/layer_{index}/{key}"], np.float32)
            return torch.nn.Parameter(torch.tensor(arr))

        self.ln1_g, self.ln1_b = p("self_attention/layer_norm/gamma"), p(
            "self_attention/layer_norm/beta")
        self.qkv_w, self.qkv_b = p("self_attention/linear_0/weight"), p(
            "self_attention/linear_0/bias")
        self.out_w, self.out_b = p("self_attention/linear_1/weight"), p(
            "self_attention/linear_1/bias")
        self.ln2_g, self.ln2_b = p("ffn/layer_norm/gamma"), p("ffn/layer_norm/beta")
        self.fc1_w, self.fc1_b = p("ffn/linear_0/weight"), p("ffn/linear_0/bias")
        self.fc2_w, self.fc2_b = p("ffn/linear_1/weight"), p("ffn/linear_1/bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, 384)
        f = torch.nn.functional
        h = f.layer_norm(x, (WIDTH,), self.ln1_g, self.ln1_b, 1e-5)
        q, k, v = f.linear(h, self.qkv_w, self.qkv_b).split(WIDTH, dim=-1)
        b, t, _ = x.shape

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, N_HEADS, WIDTH // N_HEADS).transpose(1, 2)

        att = f.scaled_dot_product_attention(heads(q), heads(k), heads(v))
        x = x + f.linear(att.transpose(1, 2).reshape(b, t, WIDTH), self.out_w, self.out_b)
        h = f.layer_norm(x, (WIDTH,), self.ln2_g, self.ln2_b, 1e-5)
        return x + f.linear(f.gelu(f.linear(h, self.fc1_w, self.fc1_b)), self.fc2_w,
                            self.fc2_b)


class Arm(torch.nn.Module):
    """Optional second Whisper block, then the temporal head."""

    def __init__(self, block: WhisperBlock | None, head: Any) -> None:
        super().__init__()
        self.block = block
        self.head = head

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(frames) if self.block is not None else frames)


def stream_frames(items: list[AudioItem], index_path: Path, conditions: list[str],
                  n_blocks: int, max_frames: int | None):
    """Yield (item number, condition, taps[1:]) file by file from the wave cache, holding
    one file's waves at a time."""
    index = json.loads(index_path.read_text())
    pos = {p: i for i, p in enumerate(index["kept"])}
    files = index_path.parent / "files"
    for n, it in enumerate(items):
        i = pos.get(str(it.path))
        if i is None:
            continue
        with np.load(files / f"{index['keys'][i]}.npz") as data:
            for c in conditions:
                taps = taps_of(prepare(data[c].astype(np.float32)), threads=2,
                               n_blocks=n_blocks)
                yield n, c, [t[:max_frames] if max_frames else t for t in taps[1:]]


def train_arm(arm: str, seqs: dict[str, list[np.ndarray | None]], items: list[AudioItem],
              weights: dict[str, np.ndarray], steps: int, block_lr: float,
              seed: int = 0) -> Arm:
    """One arm trained on crops of the cached block-1 frames (class-balanced draws, sources
    by 1/sqrt(files), a random training condition per draw)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    conds = list(seqs)
    rows = [i for i in range(len(items)) if all(seqs[c][i] is not None for c in conds)]
    block = WhisperBlock(weights, 1) if arm in ("frozen", "tuned") else None
    sample = np.concatenate([seqs[conds[0]][i] for i in rows[:: max(1, len(rows) // 400)]])
    with torch.no_grad():
        x = torch.from_numpy(sample.astype(np.float32))[None]
        ref = block(x)[0].numpy() if block is not None else x[0].numpy()
    head = build_head(ref.mean(0), ref.std(0) + 1e-3)
    head.noise = 0.05
    model = Arm(block, head)
    groups = [{"params": head.parameters(), "lr": 2e-3}]
    if block is not None:
        for p in block.parameters():
            p.requires_grad_(arm == "tuned")
        if arm == "tuned":
            groups.append({"params": block.parameters(), "lr": block_lr})
    opt = torch.optim.AdamW(groups, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=steps)
    y, prob = draw_probabilities(items, rows)
    model.train()
    if block is not None and arm == "frozen":
        block.eval()
    t0 = time.time()
    for step in range(steps):
        pick = rng.choice(len(rows), 64, p=prob)
        xb = torch.from_numpy(crop_batch(seqs, [rows[j] for j in pick], rng, CROP))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(xb), torch.tensor(y[pick].astype(np.float32)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 100 == 0:
            print(f"  {arm}: step {step + 1}/{steps}, loss {loss.item():.3f}, "
                  f"{time.time() - t0:.0f} s", flush=True)
    model.eval()
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", nargs="+", type=Path, required=True)
    ap.add_argument("--unseen", nargs="+", type=Path, required=True)
    ap.add_argument("--media-root", type=Path, default=Path("var/corpus"))
    ap.add_argument("--cache-dir", type=Path, default=Path("var/cache/speech-waves"))
    ap.add_argument("--train-conditions", nargs="+", default=["original", "opus_32k",
                                                              "band8k"])
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--block-lr", type=float, default=2e-4)
    ap.add_argument("--arms", nargs="+", default=["frozen", "tuned", "block1", "shipped"])
    ap.add_argument("--seed", type=int, default=0, help="of the crops, draws and heads")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(2)

    train = load_audio_items(args.train, args.media_root)
    seen = {str(it.path) for it in train}
    unseen = [it for it in load_audio_items(args.unseen, args.media_root)
              if str(it.path) not in seen]
    t0 = time.time()
    index = build_wave_cache(train + unseen, args.cache_dir, workers=2)
    print(f"{len(train)} training files, {len(unseen)} never-seen; wave cache "
          f"{time.time() - t0:.0f} s", flush=True)
    weights = read_ct2(weights_path())

    seqs: dict[str, list[np.ndarray | None]] = {c: [None] * len(train)
                                                for c in args.train_conditions}
    t0 = time.time()
    for n, c, taps in stream_frames(train, index, args.train_conditions, 1, TRAIN_FRAMES):
        seqs[c][n] = taps[0].astype(np.float16)
    print(f"block-1 frames of the training files: {time.time() - t0:.0f} s", flush=True)

    models: dict[str, Any] = {}
    for arm in args.arms:
        if arm == "shipped":
            from antifake.detectors.synthetic_speech import detector as ssd
            from antifake.onnx_runtime import cpu_session

            path = Path(ssd.__file__).parent / "synthetic_speech_whisper_head.onnx"
            models[arm] = cpu_session(path, 2)
            continue
        t0 = time.time()
        models[arm] = train_arm(arm, seqs, train, weights, args.steps, args.block_lr,
                                args.seed)
        print(f"{arm}: trained in {time.time() - t0:.0f} s", flush=True)
    del seqs

    scores: dict[str, dict[str, list[float]]] = {a: {c: [] for c in CONDITIONS}
                                                  for a in args.arms}
    kept_rows: dict[str, list[int]] = {c: [] for c in CONDITIONS}
    t0 = time.time()
    with torch.no_grad():
        # the encoder's own block 2 only feeds the shipped head; the other arms start from
        # block 1
        n_blocks = 2 if "shipped" in models else 1
        for n, c, taps in stream_frames(unseen, index, list(CONDITIONS), n_blocks, None):
            kept_rows[c].append(n)
            b1 = torch.from_numpy(np.ascontiguousarray(taps[0], np.float32))[None]
            for arm, m in models.items():
                if arm == "shipped":
                    z = m.run(None, {"frames": taps[1][None].astype(np.float32)})[0][0]
                else:
                    z = m(b1)[0]
                scores[arm][c].append(float(z))
    print(f"never-seen scored in {time.time() - t0:.0f} s", flush=True)

    out: dict[str, Any] = {"arms": args.arms, "steps": args.steps, "block_lr": args.block_lr,
                           "seed": args.seed,
                           "train_conditions": args.train_conditions, "results": {}}
    for c in CONDITIONS:
        rows = kept_rows[c]
        y = np.array([unseen[i].is_ai for i in rows])
        msg = f"{c:9s}"
        for arm in args.arms:
            z = np.asarray(scores[arm][c])
            line = np.quantile(z[~y], 0.95)
            auc, tpr = roc_auc(y, z), float((z[y] > line).mean())
            out["results"].setdefault(arm, {})[c] = {"auc": auc, "tpr_at_5pct": tpr}
            msg += f" | {arm} AUC {auc:.3f} TPR {tpr:.3f}"
        print(msg, flush=True)
    n_src = {v: len({unseen[i].source for i in kept_rows["original"]
                     if unseen[i].is_ai == v}) for v in (False, True)}
    print(f"never-seen: {len(kept_rows['original'])} files, {n_src[True]} synthetic and "
          f"{n_src[False]} real sources", flush=True)
    if args.json_out:
        out["files"] = [str(unseen[i].path) for i in kept_rows["original"]]
        out["scores"] = scores
        args.json_out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
