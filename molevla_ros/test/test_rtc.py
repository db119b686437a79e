"""Real-time chunking: the executor's plan, the inpainting guide in DDIM, and rollouts under inference delay."""
from __future__ import annotations

import numpy as np
import pytest
from transforms3d.euler import euler2axangle

from molevla_ros.backends.routed import Request, rtc_weights
from molevla_ros.control.chunk_executor import ChunkExecutor, Limits

UNLIMITED = Limits(np.inf, np.inf, np.inf, np.inf, np.inf, np.inf, workspace_min=None, workspace_max=None)


def _chunk(seed: int, n: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.uniform(-0.01, 0.01, (n, 7))
    c[:, 6] = rng.integers(0, 2, n)
    return c


@pytest.mark.parametrize("blend", ["average", "latest", "adaptive"])
def test_plan_is_what_the_executor_will_ask_for(blend):
    """plan(t, n, dt) row i is the blended action `step` wants at t + i*dt (as a delta over dt, rotation as the
    chunks' Euler angles), for any blend, and it ends where the queued chunks end."""
    ex = ChunkExecutor(0.1, UNLIMITED, blend=blend, chunk_timeout=5.0)
    ex.add_chunk(0.0, _chunk(1), 0.0)
    ex.add_chunk(0.2, _chunk(2), 0.2)
    plan = ex.plan(0.2, 20, 0.1)
    assert len(plan) == 16  # the newer chunk covers 0.2 .. 1.8 s
    for i in range(len(plan)):
        t = 0.2 + i * 0.1 + 0.05
        wanted = ex.step(t, 0.02).wanted
        np.testing.assert_allclose(plan[i, :3] / 0.1, wanted[:3], atol=1e-12)
        axis, angle = euler2axangle(*plan[i, 3:6], "sxyz")  # the plan keeps the chunks' Euler deltas
        np.testing.assert_allclose(np.asarray(axis) * angle / 0.1, wanted[3:6], atol=1e-12)
        assert plan[i, 6] == wanted[6]


def test_rtc_weights_follow_the_soft_mask():
    w = rtc_weights(16, frozen=3, planned=10)
    assert np.all(w[:3] == 1) and np.all(w[10:] == 0)
    assert np.all(np.diff(w[3:10]) < 0) and 0 < w[9] < w[3] < 1
    assert np.all(rtc_weights(16, frozen=0, planned=0) == 0)
    assert np.all(rtc_weights(16, frozen=20, planned=20) == 1)


def test_guided_chunk_continues_the_frozen_rows(tiny, tmp_path):
    """With a prefix, the chunk's frozen rows are the prefix (DDIM's last step returns the target where the weight
    is 1), the soft rows lie between the prefix and the free chunk, and the rest is the model's own."""
    import torch

    from molevla_ros.backends.routed import RoutedPolicy, TorchGraphs
    from molevla_ros.model.io import load_model, save_model
    from molevla_ros.model.mole_vla import MoLeVLA

    torch.manual_seed(0)
    save_model(MoLeVLA(tiny()).eval(), tmp_path / "tiny")
    model = load_model(tmp_path / "tiny")
    pol = RoutedPolicy.from_model(model, TorchGraphs(model))
    low, high = pol.low.numpy(), pol.high.numpy()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    horizon = model.cfg.action_head.horizon
    prefix = low + (high - low) * rng.uniform(0.2, 0.8, (horizon, 7))
    prefix[:, 6] = 1.0
    free = Request("touch the red cube", np.zeros(9, np.float32), image)
    guided = Request("touch the red cube", np.zeros(9, np.float32), image, prefix, prefix_frozen=2)
    z = torch.randn(2, horizon, 7, generator=torch.Generator().manual_seed(1))
    out = pol.step([free, guided], z).chunks
    np.testing.assert_allclose(out[1, :2, :6], prefix[:2, :6], atol=1e-5)
    assert np.all(out[1, :2, 6] == 1.0)
    assert not np.allclose(out[0, :2, :6], prefix[:2, :6], atol=1e-3)  # without the guide: the model's own rows


def test_delayed_rollout_applies_chunks_late_and_expert_still_succeeds():
    """run_episode with delay: chunks take effect `delay` after their observation (the expert still reaches the
    cube on a touch layout); with rtc the policy sees the executor's plan and the frozen row count."""
    from molevla_ros.sim.expert import ScriptedExpert
    from molevla_ros.sim.rollout import run_episode, sim_executor
    from molevla_ros.sim.scene import FrankaTableSim
    from molevla_ros.sim.tasks import sample_task

    expert, seen = ScriptedExpert(), []

    def policy(obs):
        seen.append((obs.stamp, None if obs.prefix is None else len(obs.prefix), obs.prefix_frozen))
        return expert.act(obs.instruction, obs.privileged)

    sim = FrankaTableSim()
    try:
        r = run_episode(sim, sample_task("touch", 1000), policy, sim_executor(0.1, blend="latest"), max_seconds=10,
                        delay_s=0.3, rtc=True)
    finally:
        sim.close()
    assert r.success
    stamps = [s for s, _, _ in seen]
    assert np.allclose(np.diff(stamps), 0.3, atol=0.021)  # one inference at a time: every 300 ms, not 200 ms
    assert seen[0][1] == 0  # nothing planned yet
    assert all(f == 4 for _, _, f in seen[1:])  # 15 ticks of 1/48 s (the physics step rounds 1/50 s) = 4 rows
    assert all(n and n > 0 for _, n, _ in seen[2:])
    assert len(r.boundary_jumps) >= len(seen) - 2


def test_executor_publishes_what_it_will_ask_for(ros):
    """The executor side of the exchange: with plan_hz > 0 it publishes, from its queued chunk, the rows from
    now on (blend latest, one chunk), in its base frame, while the chunk lasts."""
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    from molevla_ros.nodes.messages import chunk_to_msg, msg_to_chunk, stamp_s
    from molevla_ros.nodes.qos import CHUNK_PUB_QOS, LATCHED_QOS

    chunk = np.repeat(_chunk(4, 1), 8, 0)  # one action held: no alignment question at row boundaries
    overrides = {"executor": {"plan_hz": 20.0, "blend": "latest", "camera_timeout_s": 0.0,
                              "joint_state_timeout_s": 0.0, "chunk_timeout_s": 2.0}}
    with ros(["executor"], overrides) as probe:
        plans = probe.listen(JointTrajectory, "molevla/executor_plan", 30)
        goal_pub = probe.create_publisher(String, "molevla/goal", LATCHED_QOS)
        chunk_pub = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
        goal_pub.publish(String(data="touch the red cube"))
        probe.wait_for(lambda: chunk_pub.get_subscription_count() > 0, 20, "the executor on the chunk topic")
        probe.spin_for(0.5)
        sent = probe.get_clock().now().to_msg()
        chunk_pub.publish(chunk_to_msg(chunk, sent, "panda_link0", 0.1))
        probe.spin_for(1.2)
    assert len(plans) >= 10, len(plans)  # 20 Hz while the 0.8 s chunk lasts, then none
    for msg in plans:
        rows, times, problem = msg_to_chunk(msg)
        assert problem is None and msg.header.frame_id == "panda_link0"
        assert np.allclose(np.diff(times), 0.1) and 1 <= len(rows) <= 8
        np.testing.assert_allclose(rows, chunk[:len(rows)], atol=1e-9)
        assert stamp_s(msg.header.stamp) - stamp_s(sent) < 0.8  # nothing planned after the chunk ends


def test_policy_continues_the_plan_it_receives(ros, tmp_path, tiny):
    """The policy side: with real_time_chunking it reads molevla/executor_plan and its chunk's first row (which
    runs before the chunk can arrive) is the planned action at the frame's stamp; the step's stats say so."""
    import time

    import torch
    from diagnostic_msgs.msg import DiagnosticStatus
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    from molevla_ros.model.io import load_model, save_model
    from molevla_ros.model.mole_vla import MoLeVLA
    from molevla_ros.nodes.messages import chunk_to_msg, msg_to_chunk
    from test_nodes import _fake_world, _wait_matched

    torch.manual_seed(0)
    save_model(MoLeVLA(tiny(0.5)).eval(), tmp_path / "tiny")
    model = load_model(tmp_path / "tiny")
    low, high = model.action_low.numpy(), model.action_high.numpy()
    planned = np.repeat(low + (high - low) * np.random.default_rng(3).uniform(0.3, 0.7, (1, 7)), 32, 0)
    planned[:, 6] = 1.0
    overrides = {"policy": {"backend": "mole_torch", "model_dir": str(tmp_path / "tiny"), "control_hz": 5.0,
                            "real_time_chunking": True}}
    with ros(["camera", "policy"], overrides) as probe:
        chunks = probe.listen(JointTrajectory, "molevla/action_chunk", 10)
        stats = probe.listen(DiagnosticStatus, "molevla/policy_stats", 10)
        publish, goal_pub, image_pub = _fake_world(probe, "rgb8")
        plan_pub = probe.create_publisher(JointTrajectory, "molevla/executor_plan", 5)
        goal_pub.publish(String(data="touch the red cube"))
        _wait_matched(probe, image_pub)
        _wait_matched(probe, plan_pub)
        end = time.monotonic() + 30
        while len(chunks) < 4 and time.monotonic() < end:
            publish()
            plan_pub.publish(chunk_to_msg(planned, probe.get_clock().now().to_msg(), "panda_link0", 0.1))
            probe.spin_for(0.05)
    continued = [c for c, s in zip(chunks, stats) if any(kv.key == "rtc_frozen" for kv in s.values)]
    assert len(continued) >= 2, [{kv.key: kv.value for kv in s.values} for s in stats]
    for c in continued:
        out, _, _ = msg_to_chunk(c)
        np.testing.assert_allclose(out[0, :6], planned[0, :6], atol=1e-4)
        assert out[0, 6] == 1.0
    assert not np.allclose(out[-1, :6], planned[0, :6], atol=1e-3)  # the rows after the plan are the model's
