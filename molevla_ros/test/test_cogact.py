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
    longest = len(ours.ids("stack the green block on the blue block"))
    assert ids.shape == valid.shape == (2, longest) and valid[1].all() and not valid[0].all()  # CogACT pads so


def test_long_prompts_lose_their_last_words_and_batches_pad_to_the_longest(cogact):
    """A prompt longer than max_text keeps its end (the cognition feature is read at EOS) and the instruction
    loses words from its end; a batch is padded to its longest prompt, which leaves each prompt's cognition
    feature as it is alone; graphs with static shapes get max_text."""
    model = load_model(cogact.model)
    tok, n = model.text, model.cfg.llm.max_text
    words = "pick up the red cube and put it in the tray then push the blue cube to the left".split() * 8
    long = " ".join(words)
    assert len(tok._ids(long)) > n
    row = tok.ids(long)
    assert len(row) <= n and row[-2:] == [tok.space, tok.tok.eos_token_id] and tok.shortened == 1
    kept = next(k for k in range(len(words)) if tok._ids(" ".join(words[:k])) == row)  # a prefix of the words ...
    assert kept > 0 and len(tok._ids(" ".join(words[:kept + 1]))) > n  # ... and one word more would not fit
    short = "open the drawer"
    with torch.no_grad():
        def cognition(texts):
            ids, valid = model.tokenize(texts)
            image = torch.zeros(len(texts), 224, 224, 3, dtype=torch.uint8)
            return model(image, ids, valid, torch.zeros(len(texts), 9), mode="full").cognition, ids.shape[1]
        alone, width_alone = cognition([short])
        batch, width = cognition([short, long])
    assert width_alone == len(tok.ids(short)) and width == len(row)
    torch.testing.assert_close(batch[0], alone[0], atol=1e-5, rtol=1e-4)
    static = CogACTTokenizer(cogact.model / "tokenizer", model.cfg.llm, pad_to_max=True)
    assert static([short])[0].shape == (1, n)


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
    shutil.copytree(cogact.release, tmp_path / "one_dim")  # a range for one dimension must not cover all seven
    stats = json.loads((tmp_path / "one_dim" / "dataset_statistics.json").read_text())
    stats["bridge_orig"]["action"].update(q01=[-0.1], q99=[0.1], mask=[True])
    (tmp_path / "one_dim" / "dataset_statistics.json").write_text(json.dumps(stats))
    with pytest.raises(ValueError, match=r"\[bridge_orig\]: 1 action dimensions, the action head has 7"):
        run_import(tmp_path / "one_dim", cogact.tokenizer, tmp_path / "f", **COGACT_HEADS)
    del stats["bridge_orig"]["action"]["q01"]
    (tmp_path / "one_dim" / "dataset_statistics.json").write_text(json.dumps(stats))
    with pytest.raises(ValueError, match="dataset_statistics.json: no action statistics .*q01"):
        run_import(tmp_path / "one_dim", cogact.tokenizer, tmp_path / "g", **COGACT_HEADS)


def test_import_refuses_checkpoints_of_another_layout_or_tokenizer(tmp_path, cogact):
    """A projector of another layout, or a tokenizer with ids past the checkpoint's embedding (which would fail at
    the first step), are refused at import with the reason."""
    from molevla_ros.testing.synthetic_cogact import write_release

    small_vocab = write_release(tmp_path / "small_vocab", vocab=8)
    with pytest.raises(ValueError, match="tokens, the checkpoint's embedding 8: not this checkpoint's tokenizer"):
        run_import(small_vocab, cogact.tokenizer, tmp_path / "a", **COGACT_HEADS)
    shutil.copytree(cogact.release, tmp_path / "r")
    pt = next((tmp_path / "r" / "checkpoints").glob("*.pt"))
    state = torch.load(pt, weights_only=True)
    projector = state["model"]["projector"]
    state["model"]["projector"] = {k.replace("projector.4.", "projector.3."): v for k, v in projector.items()}
    torch.save(state, pt)
    with pytest.raises(ValueError, match="no weight 'projector.projector.4.weight'"):
        run_import(tmp_path / "r", cogact.tokenizer, tmp_path / "b", **COGACT_HEADS)


def test_a_training_runs_latest_checkpoint_is_imported(tmp_path, cogact):
    """A fine-tuning run saves one checkpoint per save, as CogACT's trainer names them
    (training/strategies/fsdp.py: step-{step:06d}-epoch-{epoch:02d}-loss={loss:.4f}.pt, beside a .optimizer file):
    the run folder imports its highest step, or latest-checkpoint.pt (vla/load.py's name) when there is one."""
    shutil.copytree(cogact.release, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    pt = next(ckpts.glob("*.pt"))
    state = torch.load(pt, weights_only=True)
    pt.rename(ckpts / "step-012000-epoch-03-loss=0.1234.pt")
    (ckpts / "step-012000-epoch-03-loss=0.1234.optimizer").write_bytes(b"not weights")
    older = {"model": {**state["model"], "projector": {k: torch.zeros_like(v)
                                                       for k, v in state["model"]["projector"].items()}}}
    torch.save(older, ckpts / "step-002000-epoch-00-loss=0.5000.pt")
    key = "projector.projector.0.weight"

    def imported(name: str) -> torch.Tensor:
        run_import(tmp_path / "run", cogact.tokenizer, tmp_path / name, **COGACT_HEADS)
        return load_model(tmp_path / name).projector[0].weight

    torch.testing.assert_close(imported("latest_step"), state["model"]["projector"][key.removeprefix("projector.")])
    torch.save(older, ckpts / "latest-checkpoint.pt")
    assert not imported("latest_named").any()
    (ckpts / "latest-checkpoint.pt").rename(ckpts / "mine.pt")  # names that say no order: refused, with the names
    with pytest.raises(FileNotFoundError, match=r"found 3 \(mine.pt, step-002000.*\): pass the .pt to import"):
        imported("unordered")


def test_a_flat_state_dict_of_a_wrapped_model_imports_as_the_release(tmp_path, cogact):
    """torch.save(vla.state_dict()) of a model wrapped by DistributedDataParallel (and compiled): one flat dict with
    "module." / "_orig_mod." before CogACT's keys."""
    from molevla_ros.model.import_cogact import flatten

    shutil.copytree(cogact.release, tmp_path / "run")
    pt = next((tmp_path / "run" / "checkpoints").glob("*.pt"))
    flat = flatten(torch.load(pt, weights_only=True)["model"])
    torch.save({f"module._orig_mod.{k}": v for k, v in flat.items()}, pt)
    run_import(tmp_path / "run", cogact.tokenizer, tmp_path / "flat", **COGACT_HEADS)
    ours, theirs = load_model(tmp_path / "flat").state_dict(), load_model(cogact.model).state_dict()
    for k in ("llm.layers.1.mlp.down_proj.weight", "head.blocks.0.attn.qkv.weight", "projector.4.weight",
              "vision.dino_featurizer.blocks.0.attn.qkv.weight"):
        torch.testing.assert_close(ours[k], theirs[k])
    torch.save({**flat, "step": 3}, pt)
    with pytest.raises(ValueError, match="checkpoint entry 'step' is a int"):
        run_import(tmp_path / "run", cogact.tokenizer, tmp_path / "bad", **COGACT_HEADS)


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


def test_dit_is_cogacts_timm_blocks_with_the_released_head_count(cogact):
    """CogACT's DiT (action_model/models.py): timm's Attention (qkv_bias) and Mlp (tanh GELU) in pre-norm blocks,
    the DiT-S head count (action_model.py: width 384, 4 heads), DiT's sinusoidal timestep features (diffusers'
    get_timestep_embedding, cos first). Built here from those libraries with the release's weights."""
    from diffusers.models.embeddings import get_timestep_embedding
    from timm.models.vision_transformer import Attention, Mlp
    from torch import nn
    from torch.nn.functional import layer_norm, linear, silu

    head = load_model(cogact.model).head
    assert (head.cfg.width, head.cfg.heads) == (384, 4)
    sd = {k.removeprefix("net."): v for k, v in release_state(cogact)["action_model"].items()}

    def sub(prefix: str) -> dict:
        return {k.removeprefix(prefix): v for k, v in sd.items() if k.startswith(prefix)}

    def lin(name: str, x: torch.Tensor) -> torch.Tensor:
        return linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])

    blocks = []
    for i in range(head.cfg.depth):
        attn = Attention(384, num_heads=4, qkv_bias=True)
        attn.load_state_dict(sub(f"blocks.{i}.attn."))
        mlp = Mlp(384, 4 * 384, act_layer=lambda: nn.GELU(approximate="tanh"))
        mlp.load_state_dict(sub(f"blocks.{i}.mlp."))
        blocks.append((attn.eval(), mlp.eval()))
    torch.manual_seed(0)
    cond_dim = sd["z_embedder.linear.weight"].shape[1]
    noisy, t, cond = torch.randn(3, 16, 7), torch.tensor([0, 41, 99]), torch.randn(3, cond_dim)
    with torch.no_grad():
        freq = get_timestep_embedding(t, 256, flip_sin_to_cos=True, downscale_freq_shift=0)
        c = lin("t_embedder.mlp.2", silu(lin("t_embedder.mlp.0", freq))) + lin("z_embedder.linear", cond)
        x = torch.cat([c[:, None], lin("x_embedder.linear", noisy)], 1) + sd["positional_embedding"]
        norm = lambda h: layer_norm(h, (384,), eps=1e-6)  # noqa: E731
        for attn, mlp in blocks:
            x = x + attn(norm(x))
            x = x + mlp(norm(x))
        expected = lin("final_layer.linear", norm(x))[:, 1:]
        torch.testing.assert_close(head.eps(noisy, t, cond), expected, atol=1e-5, rtol=1e-4)


def test_dit_heads_come_from_the_released_widths_or_an_option(cogact, tmp_path):
    """Widths 384 / 768 / 1024 are CogACT's DiT-S / B / L with 4 / 12 / 16 heads; another width needs dit_heads."""
    from molevla_ros.model.import_cogact import DIT_HEADS
    from molevla_ros.testing.synthetic_cogact import write_release

    assert DIT_HEADS == {384: 4, 768: 12, 1024: 16}
    rel = write_release(tmp_path / "rel", vocab=load_model(cogact.model).cfg.llm.vocab, dit=(96, 1))
    with pytest.raises(ValueError, match="dit_heads"):
        run_import(rel, cogact.tokenizer, tmp_path / "a", **COGACT_HEADS)
    run_import(rel, cogact.tokenizer, tmp_path / "b", dit_heads=3, **COGACT_HEADS)
    assert load_model(tmp_path / "b").cfg.action_head.heads == 3


def test_ddim_sampler_is_diffusers_ddim_scheduler():
    """CogACT samples with DDIM (eta 0) over its "ddim10" respacing of a 100-step squaredcos_cap_v2 schedule, x0 not
    clipped per step: diffusers' DDIMScheduler with those settings ("leading" spacing gives 90, 80, .., 0 and
    set_alpha_to_one the last step's alpha 1). Same guided noise predictor, same start: same result."""
    from diffusers import DDIMScheduler

    from molevla_ros.model.action_head import cosine_alphas_cumprod, ddim_sample
    from molevla_ros.model.config import ActionHeadConfig

    cfg = ActionHeadConfig(train_steps=100, infer_steps=10, cfg_scale=1.5, ddim_schedule="stride",
                           clip_denoised=False)
    sched = DDIMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                          set_alpha_to_one=True, prediction_type="epsilon", timestep_spacing="leading")
    sched.set_timesteps(10)
    assert sched.timesteps.tolist() == ddim_timesteps(100, 10, "stride")
    torch.testing.assert_close(cosine_alphas_cumprod(100), sched.alphas_cumprod, atol=1e-6, rtol=1e-5)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(7, 7, generator=g) * 0.3

    def eps(x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # any smooth predictor
        return torch.tanh(x @ w + c[:, None, :7] + t[:, None, None] / 100)

    noise, cond = torch.randn(2, 16, 7, generator=g), torch.randn(2, 8, generator=g)
    uncond = torch.randn(8, generator=g)
    ours = ddim_sample(eps, noise, cond, uncond, cosine_alphas_cumprod(100), cfg)
    x = noise
    for t in sched.timesteps:
        tt = torch.full((2,), int(t))
        e_c, e_u = eps(x, tt, cond), eps(x, tt, uncond.expand_as(cond))
        x = sched.step(e_u + 1.5 * (e_c - e_u), t, x, eta=0.0).prev_sample
    torch.testing.assert_close(ours, x.clamp(-1, 1), atol=1e-5, rtol=1e-5)


def test_a_bf16_backbone_serves_a_float32_action_head(cogact):
    """As CogACT serves it: the VLM in bf16, the action model and its DDIM loop in float32. Loading goes straight
    into the serving dtype (parameters built on the meta device, the file's tensors cast one at a time)."""
    from molevla_ros.backends.routed import TorchGraphs
    from molevla_ros.model.action_head import ddim_sample

    ref = load_model(cogact.model)
    half = load_model(cogact.model, dtype=torch.bfloat16)
    assert half.llm.layers[0].mlp.down_proj.weight.dtype == torch.bfloat16
    assert half.vision.dino_featurizer.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert {p.dtype for p in half.head.parameters()} == {torch.float32}
    torch.testing.assert_close(half.llm.layers[0].mlp.down_proj.weight,
                               ref.llm.layers[0].mlp.down_proj.weight.to(torch.bfloat16))
    graphs = TorchGraphs(half, dtype=torch.bfloat16)
    g = torch.Generator().manual_seed(1)
    cond, noise = torch.randn(2, ref.cfg.llm.hidden, generator=g), torch.randn(2, 16, 7, generator=g)
    ah = ref.cfg.action_head
    got = ddim_sample(graphs.eps, noise, cond, half.head.uncond, half.head.alphas_cumprod, ah)
    expected = ddim_sample(ref.head.eps, noise, cond, ref.head.uncond, ref.head.alphas_cumprod, ah)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def test_import_writes_the_dtype_asked_for(cogact, tmp_path):
    """dtype bf16 halves the folder (the action head stays float32); its weights are the release's, cast."""
    from molevla_ros.model.safetensors_io import read_header

    run_import(cogact.release, cogact.tokenizer, tmp_path / "bf16", dtype="bf16", **COGACT_HEADS)
    header, _ = read_header(tmp_path / "bf16" / "model.safetensors")
    assert header["llm.layers.0.mlp.down_proj.weight"]["dtype"] == "BF16"
    assert header["vision.siglip_featurizer.blocks.0.attn.qkv.weight"]["dtype"] == "BF16"
    assert header["head.blocks.0.attn.qkv.weight"]["dtype"] == "F32"
    full = (cogact.model / "model.safetensors").stat().st_size
    head = sum(e["data_offsets"][1] - e["data_offsets"][0] for k, e in header.items() if k.startswith("head."))
    assert (tmp_path / "bf16" / "model.safetensors").stat().st_size < 0.51 * (full - head) + head + 4096
    state = release_state(cogact)
    torch.testing.assert_close(load_model(tmp_path / "bf16", dtype=torch.bfloat16).llm.layers[1].mlp.up_proj.weight,
                               state["llm_backbone"]["llm.model.layers.1.mlp.up_proj.weight"].to(torch.bfloat16))


def test_a_checkpoint_without_vision_weights_takes_the_towers_from_elsewhere(cogact, tmp_path):
    """Fine-tunes saved with a frozen backbone carry no vision_backbone: the importer says so and takes the towers
    from a file (or timm's pretrained ones) instead of refusing."""
    shutil.copytree(cogact.release, tmp_path / "r")
    pt = next((tmp_path / "r" / "checkpoints").glob("*.pt"))
    state = torch.load(pt, weights_only=True)
    towers = state["model"].pop("vision_backbone")
    torch.save(state, pt)
    torch.save(towers, tmp_path / "towers.pt")
    with pytest.raises(ValueError, match="vision_weights"):
        run_import(tmp_path / "r", cogact.tokenizer, tmp_path / "a", **COGACT_HEADS)
    run_import(tmp_path / "r", cogact.tokenizer, tmp_path / "b", vision_weights=str(tmp_path / "towers.pt"),
               **COGACT_HEADS)
    got = load_model(tmp_path / "b").vision.siglip_featurizer.state_dict()
    for k, w in got.items():
        torch.testing.assert_close(w, towers[f"siglip_featurizer.{k}"])


def test_the_model_folder_tells_the_launch_how_to_run_it(cogact):
    """Imported from Bridge: one prediction per executed action (5 Hz), CogACT's adaptive ensemble over 7, the
    camera resized bicubic as the model was, and the model's fastest step accepted by the executor."""
    from molevla_ros.bringup import launch_overrides, model_hint_params
    from molevla_ros.model_hints import hints

    h = hints(cogact.model)
    assert h["camera"] == {"resize": "bicubic"} and h["policy"] == {"control_hz": 5.0}
    ex = h["executor"]
    assert (ex["blend"], ex["ensemble_window"]) == ("adaptive", 7)
    q01 = [-0.03, -0.04, -0.03, -0.1, -0.1, -0.2]  # the synthetic release's statistics
    assert ex["model_linear_speed"] == pytest.approx(1.25 * np.linalg.norm(np.abs(q01[:3])) / 0.2, rel=1e-3)
    given = launch_overrides("robot", {"robot": "fr3", "model_dir": str(cogact.model), "blend": "latest"})
    params = model_hint_params("robot", given)
    assert "blend" not in params["executor"] and params["executor"]["ensemble_window"] == 7  # a given one wins
    assert params["camera"] == {"resize": "bicubic"}
    assert model_hint_params("sim", launch_overrides("sim", {"backend": "scripted_expert"})) == {}
    from molevla_ros.backends.mole import make_mole_backend

    assert make_mole_backend("torch", cogact.model).resize == "bicubic"  # the policy's raw frames: the model's filter
