"""Synthetic CogACT releases for tests and benchmarks (no real weights can be downloaded here).

`write_release` writes what CogACT publishes (run folder: config.json, dataset_statistics.json,
checkpoints/<name>.pt with torch.load(pt)["model"] = {vision_backbone, projector, llm_backbone,
action_model}) with random weights at any size. Each part is written from its own public definition, not
from this package's model: the towers are timm's models, the LLM is transformers' LlamaForCausalLM, the
projector and the DiT follow Prismatic's and CogACT's module names. `write_tokenizer` trains a small
Llama-style tokenizer (SentencePiece-like "▁" pieces, <unk>/<s>/</s> = 0/1/2) with the tokenizers library and
saves it in transformers' format.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

CORPUS = ["In: What action should the robot take to {}?\nOut:".format(g) for g in (
    "pick up the red cube and put it in the tray", "push the blue cube to the left", "stack the green block",
    "open the drawer", "move near the coke can", "put the spoon on the towel", "close the gripper slowly")]


def write_tokenizer(out: Path, vocab: int = 400) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=list("▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:?\n"),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    return out


def _dit(width: int, depth: int, action_dim: int, horizon: int, cond: int) -> dict[str, torch.Tensor]:
    """CogACT's DiT (action_model/models.py) parameter names and shapes, random values."""
    r = torch.randn
    sd = {"net.x_embedder.linear.weight": r(width, action_dim), "net.x_embedder.linear.bias": r(width),
          "net.history_embedder.linear.weight": r(width, action_dim), "net.history_embedder.linear.bias": r(width),
          "net.t_embedder.mlp.0.weight": r(width, 256) * 0.05, "net.t_embedder.mlp.0.bias": r(width) * 0.05,
          "net.t_embedder.mlp.2.weight": r(width, width) * width ** -0.5, "net.t_embedder.mlp.2.bias": r(width) * 0.05,
          "net.z_embedder.linear.weight": r(width, cond) * cond ** -0.5, "net.z_embedder.linear.bias": r(width) * 0.05,
          "net.z_embedder.uncondition": r(1, cond),
          "net.positional_embedding": r(horizon + 1, width) * width ** -0.5,
          "net.final_layer.linear.weight": r(action_dim, width) * width ** -0.5,
          "net.final_layer.linear.bias": r(action_dim) * 0.05}
    for i in range(depth):
        p = f"net.blocks.{i}."
        sd.update({p + "attn.qkv.weight": r(3 * width, width) * width ** -0.5,
                   p + "attn.qkv.bias": r(3 * width) * 0.05,
                   p + "attn.proj.weight": r(width, width) * width ** -0.5, p + "attn.proj.bias": r(width) * 0.05,
                   p + "mlp.fc1.weight": r(4 * width, width) * width ** -0.5, p + "mlp.fc1.bias": r(4 * width) * 0.05,
                   p + "mlp.fc2.weight": r(width, 4 * width) * (4 * width) ** -0.5,
                   p + "mlp.fc2.bias": r(width) * 0.05})
    return sd


def write_release(out: Path, vocab: int, hidden: int = 64, layers: int = 4, heads: int = 4, kv_heads: int = 2,
                  intermediate: int | None = None,
                  towers: tuple[dict, dict] = ({"depth": 3, "embed_dim": 64, "num_heads": 4},
                                               {"depth": 3, "embed_dim": 72, "num_heads": 4}),
                  dit: tuple[int, int] = (384, 2), horizon: int = 16, seed: int = 0, ema: bool = False,
                  unnorm_key: str = "bridge_orig") -> Path:
    """A CogACT run folder at reduced size; returns the folder. `dit` = (width, depth): the default is DiT-S's
    width (384, 4 heads in CogACT's action_model.py) at 2 of its 6 blocks."""
    import timm
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    dino = timm.create_model("vit_large_patch14_reg4_dinov2", pretrained=False, num_classes=0, img_size=224,
                             **towers[0])
    siglip = timm.create_model("vit_so400m_patch14_siglip_224", pretrained=False, num_classes=0, img_size=224,
                               **towers[1])
    vision = {f"dino_featurizer.{k}": v for k, v in dino.state_dict().items()}
    vision.update({f"siglip_featurizer.{k}": v for k, v in siglip.state_dict().items()})
    fused = dino.embed_dim + siglip.embed_dim
    proj = torch.nn.Sequential(torch.nn.Linear(fused, 4 * fused), torch.nn.GELU(), torch.nn.Linear(4 * fused, hidden),
                               torch.nn.GELU(), torch.nn.Linear(hidden, hidden))
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=hidden,
                                       intermediate_size=intermediate or 2 * hidden,
                                       num_hidden_layers=layers, num_attention_heads=heads,
                                       num_key_value_heads=kv_heads, rms_norm_eps=1e-5, rope_theta=10000.0,
                                       tie_word_embeddings=False))
    model = {"vision_backbone": vision,
             "projector": {f"projector.{k}": v for k, v in proj.state_dict().items()},
             "llm_backbone": {f"llm.{k}": v for k, v in llm.state_dict().items()},
             "action_model": _dit(dit[0], dit[1], 7, horizon, hidden)}
    if ema:
        model["ema_diffusion"] = _dit(dit[0], dit[1], 7, horizon, hidden)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save({"model": model}, out / "checkpoints" / "CogACT-Synthetic.pt")
    (out / "config.json").write_text(json.dumps({"vla": {"vla_id": "prism-dinosiglip-224px+oxe+diffusion",
                                                         "base_vlm": "prism-dinosiglip-224px+7b"}}))
    q01 = [-0.03, -0.04, -0.03, -0.1, -0.1, -0.2, 0.0]
    q99 = [0.03, 0.04, 0.03, 0.1, 0.1, 0.2, 1.0]
    stats = {unnorm_key: {"action": {"q01": q01, "q99": q99, "mean": [0.0] * 7, "std": [0.01] * 7,
                                     "min": q01, "max": q99, "mask": [True] * 6 + [False]},
                          "num_transitions": 1000, "num_trajectories": 10}}
    (out / "dataset_statistics.json").write_text(json.dumps(stats))
    return out
