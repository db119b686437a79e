from pathlib import Path

import numpy as np
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.model.config import VisionConfig
from molevla_ros.record.collect import CollectOptions, collect, record_episode
from molevla_ros.train.episodes import cached_episode, load_samples, read_episode
from molevla_ros.record.mcap_writer import msg_definition
from molevla_ros.sim.scene import FrankaTableSim
from molevla_ros.sim.tasks import sample_task

VISION = VisionConfig(image_size=32)  # episodes read at a tiny model's input size


def test_msg_definition_includes_nested_types():
    text = msg_definition("trajectory_msgs/msg/JointTrajectory")
    assert "MSG: std_msgs/Header" in text and "MSG: trajectory_msgs/JointTrajectoryPoint" in text
    assert "MSG: builtin_interfaces/Duration" in text and "MSG: builtin_interfaces/Time" in text


def test_collect_records_goal_variants_and_resumes(tmp_path: Path):
    collect(CollectOptions(str(tmp_path), ("touch",), episodes=1, seed=4, goals=2))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["touch_00004.mcap", "touch_00004_g1.mcap"]
    infos = [read_episode(tmp_path / n, VISION)[0] for n in names]
    assert [i["goal"] for i in infos] == ["0", "1"] and infos[0]["instruction"] != infos[1]["instruction"]
    stamp = (tmp_path / names[0]).stat().st_mtime_ns
    collect(CollectOptions(str(tmp_path), ("touch",), episodes=1, seed=4, goals=2))  # nothing left: files untouched
    assert (tmp_path / names[0]).stat().st_mtime_ns == stamp


def test_dagger_episode_records_expert_labels_at_the_driver_states(tmp_path: Path):
    """A driver that never moves: the arm stays put, the task fails, yet every recorded chunk is the
    expert's (moving towards the cube), and training keeps the episode (a failed expert demo it skips)."""
    seen = []

    def frozen(obs):
        seen.append(obs)
        return np.zeros((16, 7)) + np.array([0, 0, 0, 0, 0, 0, 1.0])

    (tmp_path / "dagger").mkdir()
    (tmp_path / "expert").mkdir()
    sim = FrankaTableSim()
    try:
        assert not record_episode(sim, "touch", 1, tmp_path / "dagger" / "touch_00001.mcap", driver=frozen, beta=0.0,
                                  driver_name="frozen")
        expert_run = tmp_path / "expert" / "touch_00001.mcap"
        assert record_episode(sim, "touch", 1, expert_run)
    finally:
        sim.close()
    assert seen and all(o.privileged is None and o.images["main"].shape == (224, 224, 3) for o in seen)  # a node's view
    info, rows = read_episode(tmp_path / "dagger" / "touch_00001.mcap", VISION)
    assert info["policy"].startswith("dagger: frozen") and info["success"] == "false" and len(rows) == len(seen)
    q0 = rows[0][1]
    assert all(np.allclose(q[:7], q0[:7], atol=1e-2) for _, q, *_ in rows)  # the arm did not move
    assert all(np.abs(c[:, :3]).sum() > 0.01 for _, _, c, _ in rows)  # but the labels do
    both = load_samples(f"{tmp_path / 'dagger'},{tmp_path / 'expert'}", VISION)
    assert len(set(both.episode.tolist())) == 2 and len(both) == len(rows) + len(read_episode(expert_run, VISION)[1])


def test_dart_noise_moves_the_arm_off_the_expert_path_and_keeps_clean_labels(tmp_path: Path):
    """With --noise the executed chunks drift (the arm goes elsewhere than the clean expert's), while every label
    is the expert's chunk for the state reached: a label is a motion of at most the expert's step length."""
    from molevla_ros.sim.expert import FAST

    sim = FrankaTableSim()
    try:
        record_episode(sim, "touch", 2, tmp_path / "clean.mcap")
        record_episode(sim, "touch", 2, tmp_path / "noisy.mcap", noise=0.01)
    finally:
        sim.close()
    clean, noisy = (read_episode(tmp_path / f"{n}.mcap", VISION) for n in ("clean", "noisy"))
    assert noisy[0]["policy"] == "scripted_expert + noise 0.01" and clean[0]["policy"] == "scripted_expert"
    np.testing.assert_allclose(noisy[1][0][2], clean[1][0][2])  # same start state: the same label
    steps = min(len(clean[1]), len(noisy[1]))
    assert max(np.abs(noisy[1][i][1] - clean[1][i][1]).max() for i in range(steps)) > 0.02  # the arm drifted
    assert all(np.linalg.norm(c[:, :3], axis=1).max() <= FAST + 1e-6 for _, _, c, _ in noisy[1])  # clean labels


def test_recorded_episode_reads_back(tmp_path: Path):
    sim = FrankaTableSim()
    try:
        path = tmp_path / "ep.mcap"
        assert record_episode(sim, "touch", 1, path)
    finally:
        sim.close()
    # Decoded by an independent reader that only knows the schemas stored in the file.
    topics = {}
    with open(path, "rb") as f:
        for _, channel, _, ros_msg in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            topics.setdefault(channel.topic, []).append(ros_msg)
    assert set(topics) == {"/molevla/instruction", "/molevla/image", "/joint_states", "/molevla/action_chunk",
                           "/sim/privileged_state", "/molevla/task_success"}
    n = len(topics["/molevla/image"])
    assert n >= 3 and len(topics["/molevla/action_chunk"]) == n == len(topics["/joint_states"])
    assert len(topics["/sim/privileged_state"]) == n
    # The ground truth becomes the goal geometry of every step: the touched cube where the task put it.
    info, rows = read_episode(path, VISION)
    task = sample_task("touch", 1)
    np.testing.assert_allclose(rows[0][3][0], task.cubes[task.cube][:2], atol=2e-3)
    assert all(np.isnan(g[1:]).all() for *_, g in rows)  # touch has no goal and no push start
    assert topics["/molevla/instruction"][0].data.startswith("touch the")
    assert topics["/molevla/task_success"][0].data is True
    # And by rclpy, from the raw CDR bytes, as ros2 bag would.
    with open(path, "rb") as f:
        reader = make_reader(f)
        meta = {m.name: m.metadata for m in reader.iter_metadata()}
        raw = {c.topic: d for _, c, d in ((s, c, m.data) for s, c, m in reader.iter_messages())}
    assert meta["molevla_episode"]["family"] == "touch" and meta["molevla_result"]["success"] == "true"
    img = deserialize_message(raw["/molevla/image"], Image)
    assert (img.width, img.height, img.encoding) == (224, 224, "rgb8")
    chunk = deserialize_message(raw["/molevla/action_chunk"], JointTrajectory)
    actions = np.array([p.positions for p in chunk.points])
    assert actions.shape == (16, 7) and np.all(np.isfinite(actions))


def test_episode_cache_returns_what_the_recording_holds_and_follows_changes(tmp_path: Path):
    sim = FrankaTableSim()
    try:
        path = tmp_path / "ep.mcap"
        assert record_episode(sim, "push", 2, path)
        other = tmp_path / "other.mcap"
        assert record_episode(sim, "touch", 3, other)
    finally:
        sim.close()

    def same(a, b):
        assert a[0] == b[0] and len(a[1]) == len(b[1])
        for ra, rb in zip(a[1], b[1]):
            for x, y in zip(ra, rb):
                assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)

    direct = read_episode(path, VISION)
    same(cached_episode(path, VISION), direct)  # written
    (cache,) = (tmp_path / ".cache").glob("ep.*.npz")
    written = cache.stat().st_mtime_ns
    same(cached_episode(path, VISION), direct)  # read back, not rewritten
    assert cache.stat().st_mtime_ns == written
    same(cached_episode(path, VisionConfig(image_size=48)), read_episode(path, VisionConfig(image_size=48)))
    other.replace(path)  # the recording changes under the same name: the cache follows
    same(cached_episode(path, VISION), read_episode(path, VISION))
