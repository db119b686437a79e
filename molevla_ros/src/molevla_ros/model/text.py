"""Instruction -> the text input of the backbone. Three tokenizers, chosen by LLMConfig.tokenizer:

- "minilm" (the small simulator model since issue 17): the per-token features of a frozen pretrained sentence
  encoder (minilm.py, 384 wide), which the model projects into its hidden size. Words it never saw in
  training still arrive with their meaning ("tap" lands near "touch").
- "words" (older small models): each lower-case word hashes (CRC-32) into one of vocab - 2 buckets;
  any sentence is accepted, no vocabulary file is needed, sequences stay short for CPU inference.
- "cogact" (imported CogACT checkpoints): the checkpoint's Llama-2 tokenizer, loaded with transformers from
  the model folder's `tokenizer/`, and CogACT's prompt: "In: What action should the robot take to
  {instruction, lower-cased}?\\nOut:" tokenized with BOS, then the empty-piece token "▁" (29871 in Llama-2)
  and EOS (2), whose final hidden state is the cognition feature. The vision tokens go between BOS and the
  prompt (Prismatic's layout), so the ids returned here start after BOS (LLMConfig.bos_id).

All return right-padded input (ids; "minilm": features [..., 384]) and a validity mask. "words" and "minilm" pad to
max_text, so batches have one static shape; "minilm" keeps the first max_text wordpieces of a longer sentence (each
already encoded in the context of the whole sentence). "cogact" pads to the batch's longest prompt, as CogACT does
(max_text for the ONNX / TensorRT graphs, whose shapes are static), and shortens an instruction whose prompt would
exceed max_text by its last words (the cognition feature is read at the prompt's end, which must stay).
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Protocol

import torch

from molevla_ros.model import minilm
from molevla_ros.model.config import LLMConfig

PAD, BOS = 0, 1  # "words" ids; words hash into 2 .. vocab - 1
TOKENIZER_DIR = "tokenizer"  # inside a model folder, for tokenizer "cogact"


class TextEncoder(Protocol):
    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [B, max_text] (long) or features [B, max_text, F] (float) and validity [B, max_text]."""


def words(texts: list[str], cfg: LLMConfig) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((len(texts), cfg.max_text), PAD, dtype=torch.long)
    for i, t in enumerate(texts):
        for j, w in enumerate(re.findall(r"[\w'-]+", t.lower())[: cfg.max_text]):
            ids[i, j] = 2 + zlib.crc32(w.encode()) % (cfg.vocab - 2)
    return ids, ids != PAD


class MiniLMTokens:
    """Per-token features of the frozen MiniLM encoder (shared by the process, cached per sentence)."""

    def __init__(self, cfg: LLMConfig) -> None:
        self.encoder = minilm.shared()
        self.max_text = cfg.max_text

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        feats = torch.zeros(len(texts), self.max_text, minilm.WIDTH)
        valid = torch.zeros(len(texts), self.max_text, dtype=torch.bool)
        for i, f in enumerate(self.encoder.token_features(texts)):
            n = min(len(f), self.max_text)
            feats[i, :n], valid[i, :n] = f[:n], True
        return feats, valid


def cogact_prompt(instruction: str) -> str:
    """The text CogACT's predict_action tokenizes (Prismatic's PurePromptBuilder, one human turn, stripped)."""
    return f"In: What action should the robot take to {instruction.lower()}?\nOut:"


class CogACTTokenizer:
    """The checkpoint's own tokenizer and CogACT's prompt (see the module docstring)."""

    def __init__(self, folder: Path, cfg: LLMConfig, pad_to_max: bool = False) -> None:
        try:
            from transformers import AutoTokenizer
        except ImportError as e:
            raise ImportError(f"CogACT models need transformers ({e}); pip install 'molevla_ros[cogact]'") from e
        if not (Path(folder) / "tokenizer_config.json").is_file():
            raise FileNotFoundError(f"no tokenizer at {folder} (expected a transformers tokenizer folder: "
                                    "tokenizer_config.json, tokenizer.json or tokenizer.model)")
        self.tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.space = self.tok.convert_tokens_to_ids("▁")
        if self.space is None or self.space == self.tok.unk_token_id or self.tok.eos_token_id is None:
            raise ValueError(f"tokenizer at {folder} lacks the '▁' piece or an EOS token: not a Llama tokenizer")
        self.max_text, self.pad_to_max = cfg.max_text, pad_to_max
        self.shortened = 0  # instructions shortened to fit max_text so far
        if self.tok.bos_token_id != cfg.bos_id:
            raise ValueError(f"tokenizer BOS id {self.tok.bos_token_id} is not the model's {cfg.bos_id}")

    def ids(self, instruction: str) -> list[int]:
        """The prompt's ids after BOS (the model puts the vision tokens between BOS and these), at most max_text:
        a longer instruction loses words from its end until its prompt fits."""
        row = self._ids(instruction)
        if len(row) <= self.max_text:
            return row
        words = instruction.split()
        lo, hi = 0, len(words)  # the most words whose prompt fits: in [lo, hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if len(self._ids(" ".join(words[:mid]))) <= self.max_text else (lo, mid)
        row = self._ids(" ".join(words[:lo]))
        if len(row) > self.max_text:
            raise ValueError(f"max_text {self.max_text} cannot hold CogACT's prompt ({len(row)} tokens without an "
                             "instruction)")
        self.shortened += 1
        return row

    def _ids(self, instruction: str) -> list[int]:
        ids = list(self.tok(cogact_prompt(instruction)).input_ids)
        if ids[:1] == [self.tok.bos_token_id]:
            ids = ids[1:]
        return ids + [self.space, self.tok.eos_token_id]

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.ids(t) for t in texts]
        width = self.max_text if self.pad_to_max else max(map(len, rows), default=1)
        ids = torch.zeros((len(texts), width), dtype=torch.long)
        valid = torch.zeros((len(texts), width), dtype=torch.bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            valid[i, : len(row)] = True
        return ids, valid


def text_encoder(cfg: LLMConfig, model_dir: Path | None = None, static: bool = False) -> TextEncoder:
    """The model's tokenizer; `static`: always max_text wide (graphs with static shapes)."""
    if cfg.tokenizer == "words":
        return lambda texts: words(texts, cfg)
    if cfg.tokenizer == "minilm":
        return MiniLMTokens(cfg)
    if cfg.tokenizer == "cogact":
        if model_dir is None:
            raise ValueError("tokenizer 'cogact' reads the model folder's tokenizer/: pass model_dir")
        return CogACTTokenizer(Path(model_dir) / TOKENIZER_DIR, cfg, pad_to_max=static)
    raise ValueError(f"unknown tokenizer {cfg.tokenizer!r} (minilm, words, cogact)")
