"""Imported CogACT checkpoints, checked against the public definitions they come from: timm's towers,
transformers' Llama and tokenizer, CogACT's prompt, unnormalisation and DDIM respacing. The release is
synthetic (reduced sizes, random weights, CogACT's key layout; conftest.cogact)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from molevla_ros.model.action_head import ddim_timesteps
from molevla_ros.model.import_cogact import ImportOptions, import_cogact
from molevla_ros.model.io import load_model
from molevla_ros.model.mole_vla import preprocess_images, to_robot_units
from molevla_ros.model.text import CogACTTokenizer, cogact_prompt

from conftest import COGACT_HEADS


def release_state(cogact) -> dict:
    return torch.load(next((cogact.release / "checkpoints").glob("*.pt")), weights_only=True)["model"]


def test_prompt_is_cogacts_and_ids_are_the_tokenizers(cogact):
    from transformers import AutoTokenizer

    expected = "In: What action should the robot take to pick up the red cube?\nOut:"
    assert cogact_prompt("Pick up the RED cube") == expected
    tok = AutoTokenizer.from_pretrained(str(cogact.tokenizer))
    model = load_model(cogact.model)
    ours = CogACTTokenizer(cogact.model / "tokenizer", model.cfg.llm)
    for text in ["pick up the red cube and put it in the tray", "Open the drawer", "move near the coke can"]:
        expected = tok(cogact_prompt(text)).input_ids  # BOS first
        assert expected[0] == tok.bos_token_id
        # CogACT appends the empty piece and EOS (29871, 2 in Llama-2); the model puts vision tokens after BOS
        assert ours.ids(text) == expected[1:] + [tok.convert_tokens_to_ids("▁"), tok.eos_token_id]
    ids, valid = ours(["open the drawer", "stack the green block on the blue block"])
    assert ids.shape == valid.shape == (2, model.cfg.llm.max_text) and not valid[:, -1].any()
    with pytest.raises(ValueError, match="shorten"):
        ours(["open the drawer " * 40])


def test_featurizer_is_the_second_to_last_block_of_each_timm_tower(cogact):
    """Our featurizer against the towers run block by block with timm's own modules."""
    model = load_model(cogact.model)
    torch.manual_seed(0)
    pixels = torch.rand(2, 3, 224, 224)
    got = model.vision(pixels)

    def by_hand(tower, mean, std):
        x = tower.patch_embed((pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
        x = tower.norm_pre(tower.patch_drop(tower._pos_embed(x)))
        for blk in tower.blocks[:-1]:
            x = blk(x)
        return x[:, tower.num_prefix_tokens:]

    v = model.vision
    dino = by_hand(v.dino_featurizer, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    siglip = by_hand(v.siglip_featurizer, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert v.dino_featurizer.num_prefix_tokens == 5  # class token + 4 registers, dropped
    assert got.shape == (2, 256, model.cfg.vision.feature_dim)
    torch.testing.assert_close(got, torch.cat([dino, siglip], 2), atol=1e-5, rtol=1e-5)
    state = release_state(cogact)["vision_backbone"]
    for k, w in v.dino_featurizer.state_dict().items():  # the release's weights, not a re-initialisation
        torch.testing.assert_close(w, state[f"dino_featurizer.{k}"].float())


def test_cognition_feature_is_transformers_llama_last_hidden_state_at_eos(cogact):
    """CogACT's cognition feature: transformers' Llama on [BOS, projected patches, prompt .. EOS], the final
    (normed) hidden state at the last token. Ours must equal it, through the node's serving path too."""
    from transformers import LlamaConfig, LlamaForCausalLM

    state = release_state(cogact)
    model = load_model(cogact.model)
    c = model.cfg.llm
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=c.vocab, hidden_size=c.hidden, intermediate_size=c.intermediate,
                                         num_hidden_layers=c.layers, num_attention_heads=c.heads,
                                         num_key_value_heads=c.kv_heads, rms_norm_eps=c.rms_eps,
                                         rope_theta=c.rope_theta, tie_word_embeddings=False)).eval()
    llama.load_state_dict({k.removeprefix("llm."): v for k, v in state["llm_backbone"].items()})
    proj = torch.nn.Sequential(torch.nn.Linear(*state["projector"]["projector.0.weight"].shape[::-1]), torch.nn.GELU(),
                               torch.nn.Linear(*state["projector"]["projector.2.weight"].shape[::-1]), torch.nn.GELU(),
                               torch.nn.Linear(*state["projector"]["projector.4.weight"].shape[::-1]))
    proj.load_state_dict({k.removeprefix("projector."): v for k, v in state["projector"].items()})

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (1, 180, 240, 3), dtype=np.uint8)
    text = "put the spoon on the towel"
    prompt_ids = model.text.ids(text)
    with torch.no_grad():
        patches = proj(model.vision(preprocess_images(torch.from_numpy(image), model.cfg.vision)))
        emb = llama.model.embed_tokens
        x = torch.cat([emb(torch.tensor([[c.bos_id]])), patches, emb(torch.tensor([prompt_ids]))], 1)
        ref = llama(inputs_embeds=x, output_hidden_states=True).hidden_states[-1][:, -1]
        ids, valid = model.tokenize([text])
        ours = model(torch.from_numpy(image), ids, valid, torch.zeros(1, 9), mode="full").cognition
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-4)

    from molevla_ros.backends.mole import make_mole_backend
    from molevla_ros.backends.routed import Request

    step = make_mole_backend("torch", cogact.model).policy.step([Request(text, np.zeros(9), image[0])],
                                                                torch.zeros(1, 16, 7), "full")
    np.testing.assert_allclose(step.cognition, ref.numpy(), atol=2e-5, rtol=1e-4)


def test_actions_unnormalise_as_cogact_does():
    """CogACT: clip to [-1, 1]; gripper = 0 where the normalised value < 0.5, else 1; masked dims scaled by
    q01/q99, unmasked (the gripper) left as they are."""
    from molevla_ros.model.config import ActionSpec

    rng = np.random.default_rng(0)
    norm = rng.uniform(-1.3, 1.3, (4, 16, 7)).astype(np.float32)
    q01, q99 = rng.uniform(-0.1, 0, 7), rng.uniform(0.01, 0.1, 7)
    mask = np.array([True] * 6 + [False])
    expected = np.clip(norm, -1, 1)
    expected[..., 6] = np.where(expected[..., 6] < 0.5, 0, 1)
    expected = np.where(mask, 0.5 * (expected + 1) * (q99 - q01) + q01, expected)
    low, high = np.where(mask, q01, -1.0), np.where(mask, q99, 1.0)  # what the importer stores
    got = to_robot_units(torch.from_numpy(norm), torch.tensor(low), torch.tensor(high),
                         ActionSpec(gripper_threshold_on="normalized"))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_ddim_timesteps_follow_cogacts_respacing():
    assert ddim_timesteps(100, 10, "stride") == [90, 80, 70, 60, 50, 40, 30, 20, 10, 0]  # "ddim10"
    assert ddim_timesteps(100, 5, "stride") == [80, 60, 40, 20, 0]
    assert ddim_timesteps(100, 10, "linspace") == [99, 88, 77, 66, 55, 44, 33, 22, 11, 0]
    with pytest.raises(ValueError):
        ddim_timesteps(100, 11, "stride")  # no stride gives exactly 11 steps (CogACT raises too)


def test_import_maps_every_weight_and_reads_the_release(cogact):
    rep, model = cogact.report, load_model(cogact.model)
    assert all(k.startswith(("router.", "proprio", "cognition_token", "action_")) for k in rep["initialised"])
    assert len(rep["dropped"]) == 3  # lm_head, DiT history embedder (weight, bias)
    state = release_state(cogact)
    torch.testing.assert_close(model.head.blocks[0].attn.qkv.weight,
                               state["action_model"]["net.blocks.0.attn.qkv.weight"])
    torch.testing.assert_close(model.llm.layers[1].mlp.down_proj.weight,
                               state["llm_backbone"]["llm.model.layers.1.mlp.down_proj.weight"])
    stats = json.loads((cogact.release / "dataset_statistics.json").read_text())["bridge_orig"]["action"]
    np.testing.assert_allclose(model.action_low[:6].numpy(), stats["q01"][:6], rtol=1e-6)
    assert model.cfg.action_dt == pytest.approx(0.2) and not model.cfg.router_trained  # bridge: 5 Hz
    assert model.cfg.action_head.horizon == 16 and model.cfg.llm.layers == 4


def run_import(source, tokenizer, out, **kw) -> dict:
    return import_cogact(ImportOptions(str(source), str(tokenizer), str(out), **kw))


def test_import_refuses_what_it_cannot_run(cogact, tmp_path):
    with pytest.raises(ValueError, match="llm_heads"):  # hidden 64 has no Llama-2 head count
        run_import(cogact.release, cogact.tokenizer, tmp_path / "a")
    shutil.copytree(cogact.release, tmp_path / "r")
    stats = json.loads((tmp_path / "r" / "dataset_statistics.json").read_text())
    stats["other_robot"] = stats["bridge_orig"]
    (tmp_path / "r" / "dataset_statistics.json").write_text(json.dumps(stats))
    with pytest.raises(ValueError, match="unnorm_key"):
        run_import(tmp_path / "r", cogact.tokenizer, tmp_path / "b", **COGACT_HEADS)
    with pytest.raises(ValueError, match="control period"):
        run_import(tmp_path / "r", cogact.tokenizer, tmp_path / "c", unnorm_key="other_robot", **COGACT_HEADS)
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        run_import(cogact.release, tmp_path, tmp_path / "d", **COGACT_HEADS)
    pt = next((tmp_path / "r" / "checkpoints").glob("*.pt"))
    state = torch.load(pt, weights_only=True)
    state["model"]["projector"]["extra.weight"] = torch.zeros(1)
    torch.save(state, pt)
    with pytest.raises(ValueError, match="no place"):
        run_import(tmp_path / "r", cogact.tokenizer, tmp_path / "e", unnorm_key="bridge_orig", **COGACT_HEADS)


def test_ema_weights_are_used_on_request(tmp_path, cogact):
    from molevla_ros.testing.synthetic_cogact import write_release

    rel = write_release(tmp_path / "rel", vocab=load_model(cogact.model).cfg.llm.vocab, ema=True)
    state = torch.load(next((rel / "checkpoints").glob("*.pt")), weights_only=True)["model"]
    run_import(rel, cogact.tokenizer, tmp_path / "ema", use_ema=True, **COGACT_HEADS)
    run_import(rel, cogact.tokenizer, tmp_path / "plain", **COGACT_HEADS)
    key = "net.final_layer.linear.weight"
    for name, part in (("ema", "ema_diffusion"), ("plain", "action_model")):
        torch.testing.assert_close(load_model(tmp_path / name).head.final_layer.linear.weight, state[part][key])


def test_mole_fine_tuning_of_an_imported_model_trains_its_router(tmp_path, cogact):
    """MoLe fine-tuning (STAR router + CogKD) starting from an imported CogACT (reduced sizes, a few steps):
    the frozen towers stay as imported, the router learns, and the backends then route with it."""
    from molevla_ros.backends.mole import make_mole_backend
    from molevla_ros.train.episodes import Samples
    from molevla_ros.train.trainer import TrainConfig, train

    rng = np.random.default_rng(0)
    n = 8
    data = Samples(rng.integers(0, 255, (n, 224, 224, 3), dtype=np.uint8), rng.normal(size=(n, 9)).astype(np.float32),
                   rng.uniform(-0.02, 0.02, (n, 16, 7)).astype(np.float32), ["open the drawer"] * n, ["touch"] * n,
                   np.arange(n) // 4)
    before = load_model(cogact.model)
    train(TrainConfig(init=str(cogact.model), out=str(tmp_path / "mole"), stage="mole", steps=3, batch=4,
                      save_every=100), data=data)
    after = load_model(tmp_path / "mole")
    assert after.cfg.router_trained
    torch.testing.assert_close(after.vision.siglip_featurizer.blocks[0].attn.qkv.weight,
                               before.vision.siglip_featurizer.blocks[0].attn.qkv.weight)
    assert not torch.equal(after.router.state_dict()["alpha.weight"], before.router.state_dict()["alpha.weight"])
    backend = make_mole_backend("torch", tmp_path / "mole")
    assert backend.route == "mole" and not backend.note
