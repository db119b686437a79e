"""Language: the pinned MiniLM encoder, the training / held-out wordings, the MiniLM text path of the model (train,
serve, ONNX), and the policy node refusing goals unlike anything the model was trained on."""
from __future__ import annotations

import hashlib
import time
import zipfile

import numpy as np
import pytest
import torch
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.model.goal_familiarity import FILE, GoalFamiliarity, write_reference
from molevla_ros.model.minilm import WEIGHTS_SHA256, MiniLM, package_zip, shared
from molevla_ros.model.language import FAMILIES, colour_kinds, instruction_for, parse_instruction
from molevla_ros.sim.tasks import COLOURS, is_goal_of, sample_task
from molevla_ros.model.wordings import HELD_OUT, content_words, held_out_wording, random_wording, training_vocabulary

CANONICAL = ([instruction_for("touch", c) for c in COLOURS] + [instruction_for("pick_place", c) for c in COLOURS]
             + [instruction_for("push", c, t) for c in COLOURS for t in COLOURS])
PARAPHRASES = ["Tap the red block, please.", "could you put the blue brick into the bin",
               "slide the green cube onto the yellow spot"]
UNRELATED = ["coge el cubo rojo", "pon el cubo azul en la bandeja", "Nimm den roten Würfel", "make me a coffee",
             "what is the weather like", "drive to the kitchen"]


def test_weights_are_the_pinned_file_and_other_bytes_are_refused(tmp_path):
    with zipfile.ZipFile(package_zip()) as z:
        assert hashlib.sha256(z.read("model.safetensors")).hexdigest() == WEIGHTS_SHA256
        forged = tmp_path / "model.zip"
        with zipfile.ZipFile(forged, "w") as out:
            for name in ("config.json", "tokenizer.json"):
                out.writestr(name, z.read(name))
            out.writestr("model.safetensors", z.read("model.safetensors")[:-1] + b" ")  # one byte changed
    with pytest.raises(ValueError, match="sha256"):
        MiniLM(forged)


def test_sentence_embeddings_put_paraphrases_near_and_other_requests_far():
    enc = shared()
    ref = enc.sentence(["touch the red cube"])[0]
    near = enc.sentence(["Touch the red cube.", "please touch the red cube", "tap the red block"]) @ ref
    far = enc.sentence(["coge el cubo rojo", "make me a coffee"]) @ ref
    assert near.min() > far.max() + 0.2, (near, far)
    assert enc.token_features(["touch the red cube"])[0].shape == (6, 384)  # [CLS] touch the red cube [SEP]


def test_training_wordings_keep_the_goal_and_held_out_wordings_share_no_content_word():
    rng = np.random.default_rng(0)
    for family in FAMILIES:
        for seed in range(40):
            task = sample_task(family, seed)
            text = random_wording(family, task.cube, task.target, rng)
            assert is_goal_of(text, task), text  # the colours, in order, and nothing else
            assert is_goal_of(held_out_wording(family, task.cube, task.target, seed), task)
    assert len({random_wording("touch", "red", None, rng) for _ in range(200)}) > 100  # varied, not a handful
    vocabulary = training_vocabulary()
    for options in HELD_OUT.values():
        for option in options:
            assert not content_words(option.replace("{C}", "").replace("{T}", "")) & vocabulary, option
    assert parse_instruction(held_out_wording("touch", "red", None, 0)) is None  # not one of the templates


def test_familiarity_separates_paraphrases_from_other_languages_and_requests(tmp_path):
    write_reference(tmp_path, CANONICAL, "varied")
    fam = GoalFamiliarity.of(tmp_path)
    held_out = [held_out_wording(f, "red", "blue", i) for f in FAMILIES for i in range(4)]
    assert min(map(fam.similarity, PARAPHRASES + held_out)) > 0.5 > max(map(fam.similarity, UNRELATED))
    assert not any(fam.read(g, 0.5).refusal for g in PARAPHRASES + held_out + ["RED CUBE -> TRAY"])
    # near in meaning (0.86), but naming no colour the model was trained on: refused for that reason
    assert fam.read("touch the purple cube", 0.5).refusal.startswith(
        "names none of the colours the model knows (blue, green, red, yellow); the nearest goal it knows: 'touch the ")
    # about 0.5 similar: refused by one check or the other
    assert all(fam.read(g, 0.5).refusal for g in ("touche le cube rouge", "open the drawer", "wave hello"))
    assert not fam.read("open the drawer", 0.0).refusal  # 0 turns the checks off
    assert GoalFamiliarity.of(tmp_path / "elsewhere") is None


def test_accepted_goals_are_read_as_the_training_goal_they_mean_with_the_colours_from_the_words(tmp_path):
    write_reference(tmp_path, CANONICAL, "varied")
    fam = GoalFamiliarity.of(tmp_path)
    rng = np.random.default_rng(3)
    for family in FAMILIES:
        for seed in range(8):
            task = sample_task(family, seed)
            meant = instruction_for(family, task.cube, task.target)
            for text in (held_out_wording(family, task.cube, task.target, seed), meant.upper() + "!",
                         random_wording(family, task.cube, task.target, rng)):
                assert fam.read(text, 0.5).known == meant, text
    # the embedding hardly tells these apart; the words do
    assert fam.read("Drive the blue cuboid across to the red marker", 0.5).known == instruction_for("push", "blue",
                                                                                                     "red")
    assert fam.read("Drive the red cuboid across to the blue marker", 0.5).known == instruction_for("push", "red",
                                                                                                     "blue")
    # colours in an order no training goal has: no known goal, and refused (next test)
    assert fam.read("touch the red cube, then the blue cube, then the green cube", 0.5).known == ""
    assert fam.read("coge el cubo rojo", 0.5).known == ""


@pytest.mark.parametrize("goal, reason", [
    ("stack the red cube on the blue cube", "names the blue cube where the goal it is closest to has the blue target"),
    ("touch the red cube and then the blue block", "names the blue cube where"),
    ("touch the red target", "names the red target where the goal it is closest to has the red cube"),
    ("push it to the blue disc", "names the blue target where the goal it is closest to has the blue cube"),
    ("pick up the green marker and put it in the bin", "names the green target where"),
    ("push the red cube to the amber target", "names a colour the model does not know (amber; it knows blue, "),
    ("Push the ORANGE block onto the red spot", "names a colour the model does not know (orange;"),
    ("push the red cube to the grey target", "names a colour the model does not know (grey;"),  # not read as green
    ("do not touch the red cube", "asks not to act on a thing it names, or to move it away ('do not touch the red "),
    ("Don\u00b4t push the red cube to the blue target", "asks not to act on a thing it names, or to move it away "
     "('don't push"),
    ("touch anything except the red cube", "asks not to act on a thing it names"),
    ("push the red cube off the blue target", "asks not to act on a thing it names, or to move it away"),
    ("touch the red cube, then the blue cube, then the green cube",
     "names colours in an order none of the model's goals has (red, blue, green)"),
])
def test_goals_that_ask_for_something_else_are_refused_not_read_as_a_known_goal(tmp_path, goal, reason):
    """Each of these is close to a training goal in embedding space (similarity > 0.5) and names its colours; read
    as the nearest known goal it would move the arm to do something the operator did not ask for."""
    write_reference(tmp_path, CANONICAL, "varied")
    fam = GoalFamiliarity.of(tmp_path)
    reading = fam.read(goal, 0.5)
    assert reading.similarity > 0.5 and reading.refusal.startswith(reason), reading
    assert "; the nearest goal it knows: '" in reading.refusal and reading.known == ""
    assert not fam.read(goal, 0.0).refusal  # 0 turns every check off


def test_requests_to_act_are_read_as_their_goal_whatever_else_they_say(tmp_path):
    write_reference(tmp_path, CANONICAL, "varied")
    fam = GoalFamiliarity.of(tmp_path)
    touch, push, pick = (instruction_for("touch", "red"), instruction_for("push", "red", "blue"),
                         instruction_for("pick_place", "red"))
    for goal, meant in [("why don't you touch the red cube", touch), ("don't forget to touch the red cube", touch),
                        ("Never mind that, touch the red cube", touch), ("touch the red cube, not too hard", touch),
                        ("touch the red cube on the white table", touch), ("touch the red wooden block", touch),
                        ("push the red cube to the blue target and don't knock anything over", push),
                        ("push the red cube to the blue square target", push), ("red cube -> blue target", push),
                        ("push the red cube onto the blue target if it's not there", push),
                        ("put red in tray", pick), ("red \u2192 tray", pick),
                        ("put the red cube in the tray, don't drop it", pick),
                        ("pink up the red cube and put it in the tray", pick)]:  # a typo, not a colour
        reading = fam.read(goal, 0.5)
        assert not reading.refusal and reading.known == meant, (goal, reading)


def test_colour_kinds_read_the_head_noun_after_each_colour():
    assert colour_kinds("Push the red wooden block onto the blue one") == [("red", "cube"), ("blue", None)]
    assert colour_kinds("the red and the blue cube; the green bin") == [("red", None), ("blue", "cube"),
                                                                        ("green", "tray")]
    assert colour_kinds("the red purple cube") == [("red", None)]  # another colour first: not red's noun
    assert colour_kinds("the blue square target, red in tray") == [("blue", "target"), ("red", None)]
    assert colour_kinds("the red's corner") == [("red", None)]  # "red's": red, as colour_mentions reads it


def test_reference_files_without_sentence_owners_are_read_from_their_layout(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    write_reference(tmp_path, CANONICAL, "varied")
    with safe_open(str(tmp_path / FILE), "pt") as f:
        sentences, meta = f.get_tensor("sentences"), f.metadata()
    goal = held_out_wording("pick_place", "green", None, 2)
    new = GoalFamiliarity.of(tmp_path).read(goal, 0.5).known
    assert new == instruction_for("pick_place", "green")
    del meta["owners"]  # as written before 2026-12-07
    save_file({"sentences": sentences}, str(tmp_path / FILE), meta)
    assert GoalFamiliarity.of(tmp_path).read(goal, 0.5).known == new
    save_file({"sentences": sentences[:-1]}, str(tmp_path / FILE), meta)  # rows that fit no layout: not guessed
    reading = GoalFamiliarity.of(tmp_path).read(goal, 0.5)
    assert reading.known == "" and not reading.refusal


def test_minilm_model_trains_on_varied_wording_and_serves_the_same_on_torch_and_onnx(tmp_path, tiny, monkeypatch):
    from molevla_ros.backends.mole import make_mole_backend
    from molevla_ros.model.io import load_model
    from molevla_ros.train.config import TrainConfig
    from molevla_ros.train.episodes import Samples
    from molevla_ros.train.trainer import train

    monkeypatch.setenv("MOLEVLA_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    n = 48
    instructions = [CANONICAL[i % 4] for i in range(n)]  # the four touch goals: 4 x 256 wordings to encode
    chunks = np.zeros((n, 4, 7), np.float32)
    chunks[:, :, 0] = np.array([0.01 if "red" in t.split()[2] else -0.01 for t in instructions])[:, None]
    chunks[:, :, 6] = 1.0
    data = Samples(rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), rng.normal(size=(n, 9)).astype(np.float32),
                   chunks, instructions, ["touch"] * n, np.arange(n))
    hist = train(TrainConfig(out=str(tmp_path / "m"), stage="teacher", steps=40, batch=8, lr=2e-3),
                 tiny(0.5, "minilm"), data)
    assert hist and (tmp_path / "m" / FILE).is_file()
    model = load_model(tmp_path / "m")
    assert model.text_in is not None and model.text_in.in_features == 384
    obs_text = ["Tap the red block, please.", "push the blue cube to the green target"]
    ids, valid = model.tokenize(obs_text)
    assert ids.dtype == torch.float32 and ids.shape == (2, 8, 384) and valid.sum(1).tolist() == [8, 8]  # truncated
    from molevla_ros.backends.base import Observation

    def chunk(kind):
        backend = make_mole_backend(kind, tmp_path / "m")
        assert backend.familiarity is not None
        obs = Observation(obs_text[0], {f"panda_joint{i}": 0.1 for i in range(1, 8)} | {
            "panda_finger_joint1": 0.04, "panda_finger_joint2": 0.04}, {"main": np.full((40, 40, 3), 90, np.uint8)},
            0.0)
        return backend.act(obs).chunk

    np.testing.assert_allclose(chunk("torch"), chunk("onnx"), atol=1e-3)


def test_policy_node_refuses_a_goal_unlike_its_training_goals(ros, tmp_path, tiny):
    from test_nodes import _fake_world, _wait_matched

    from molevla_ros.model.io import save_model
    from molevla_ros.model.mole_vla import MoLeVLA
    from molevla_ros.nodes.qos import STATUS_QOS

    torch.manual_seed(0)
    folder = tmp_path / "tiny_minilm"
    save_model(MoLeVLA(tiny(0.5, "minilm")).eval(), folder)
    write_reference(folder, CANONICAL, "varied")
    overrides = {"policy": {"backend": "mole_torch", "model_dir": str(folder), "control_hz": 10.0}}
    with ros(["camera", "policy"], overrides) as probe:
        chunks = probe.listen(JointTrajectory, "molevla/action_chunk", 10)
        status = probe.listen(String, "molevla/status", STATUS_QOS)
        publish, goal_pub, image_pub = _fake_world(probe)
        _wait_matched(probe, image_pub)
        probe.wait_for(lambda: any(s.data.startswith("ready") for s in status), 30, "policy ready")
        goal_pub.publish(String(data="coge el cubo rojo"))
        probe.wait_for(lambda: any("unlike any goal" in s.data for s in status), 15, "the refusal on status")
        assert any("; the nearest goal it knows: '" in s.data for s in status)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            publish()
            probe.spin_for(0.05)
        assert not chunks, "a refused goal moved the arm"
        goal_pub.publish(String(data="Tap the red block, please."))
        probe.wait_for(lambda: (publish(), probe.spin_for(0.05), bool(chunks))[-1], 30, "chunks for a paraphrase")
        assert any(s.data == "accepted (read as a known goal): policy: goal 'Tap the red block, please.' read as "
                   "'touch the red cube' (the training goal it means)" for s in status)
        goal_pub.publish(String(data="tuch the red cueb"))
        probe.wait_for(lambda: any(s.data == "accepted (typing corrected): policy: goal 'tuch the red cueb' read as "
                                   "'touch the red cube' (typing: tuch -> touch, cueb -> cube)" for s in status), 15,
                       "the reading on status")
        n = len(chunks)
        probe.wait_for(lambda: (publish(), probe.spin_for(0.05), len(chunks) > n)[-1], 30, "chunks for the typed goal")


def test_goal_inputs_draw_encoded_rewordings_of_each_samples_own_goal(tiny):
    from molevla_ros.model.mole_vla import MoLeVLA
    from molevla_ros.model.text import words
    from molevla_ros.train.trainer import GoalInputs

    cfg = tiny()
    cfg.llm.max_text, cfg.llm.vocab = 32, 10007  # whole sentences, few hash collisions
    model = MoLeVLA(cfg)  # hashed words: a colour word is one known id
    colour = {c: int(words([c], model.cfg.llm)[0][0, 0]) for c in COLOURS}
    recorded = ["touch the red cube", "push the blue cube to the green target", "touch the red cube"]
    gen = torch.Generator().manual_seed(0)
    ids, _ = GoalInputs(model, recorded, "canonical").sample(torch.tensor([0, 1, 2]), gen)
    assert torch.equal(ids, model.tokenize(recorded)[0])
    varied = GoalInputs(model, recorded, "varied", per_goal=16)
    assert len(varied.inputs) == 2 * 16  # two distinct goals, encoded once each
    ids, _ = varied.sample(torch.ones(300, dtype=torch.long), gen)  # sample 1, drawn 300 times
    assert len({tuple(r.tolist()) for r in ids}) > 8  # many wordings
    for row in ids.tolist():
        assert colour["blue"] in row and colour["green"] in row and colour["red"] not in row
