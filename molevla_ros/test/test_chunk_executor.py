import numpy as np
import pytest

from molevla_ros.control.chunk_executor import ACTION_NAMES, ChunkExecutor, Limits, chunk_period, order_by_names

BASE = dict(max_linear_speed=0.3, max_angular_speed=1.0, max_linear_accel=3.0, max_angular_accel=8.0,
            max_linear_jerk=50.0, max_angular_jerk=400.0, workspace_min=None, workspace_max=None)


def lim(**changes) -> Limits:
    """Limits for a test: BASE with `changes` (every value spelt out: no default limits exist)."""
    return Limits(**{**BASE, **changes})


def executor(action_dt=0.1, limits=None, **kw) -> ChunkExecutor:
    return ChunkExecutor(action_dt, limits or lim(), **kw)


def chunk(vx_step=0.02, n=16, grip=1.0):
    a = np.zeros((n, 7))
    a[:, 0] = vx_step
    a[:, 6] = grip
    return a


def test_rows_indexed_by_stamp_and_latency_compensated():
    ex = executor(action_dt=0.1, limits=lim(max_linear_accel=1e9, max_linear_jerk=np.inf))
    a = chunk()
    a[:, 0] = np.arange(16) * 0.001  # row i asks for i mm per step
    assert ex.add_chunk(10.0, a, now=10.25) is None  # arrives 0.25 s late
    cmd = ex.step(10.25, 0.02)
    assert cmd.active and cmd.linear[0] == pytest.approx(0.002 / 0.1), "row 2 is due at t = stamp + 0.25 s"


def test_speed_and_accel_limits_hold():
    limits = lim(max_linear_speed=0.3, max_linear_accel=2.0)
    ex = executor(limits=limits, chunk_timeout=10.0)
    assert ex.add_chunk(0.0, chunk(vx_step=0.08), now=0.0) is None  # asks for 0.8 m/s: plausible, clamped
    v, prev = [], 0.0
    for k in range(50):
        cmd = ex.step(k * 0.02, 0.02)
        v.append(cmd.linear[0])
        assert abs(cmd.linear[0] - prev) <= 2.0 * 0.02 + 1e-12
        prev = cmd.linear[0]
    assert max(v) == pytest.approx(0.3) and max(v) <= 0.3 + 1e-12


def test_jerk_limit_holds_across_a_chunk_boundary_without_overshoot():
    limits = lim(max_linear_speed=0.3, max_linear_accel=3.0, max_linear_jerk=50.0)
    ex = executor(limits=limits, chunk_timeout=10.0, blend="latest")
    ex.add_chunk(0.0, chunk(vx_step=0.01), now=0.0)  # 0.1 m/s
    dt, v, a = 0.02, [0.0], [0.0]
    for k in range(1, 40):
        if k == 20:
            ex.add_chunk(k * dt, chunk(vx_step=0.025), now=k * dt)  # boundary: step to 0.25 m/s
        v.append(ex.step(k * dt, dt).linear[0])
        a.append((v[-1] - v[-2]) / dt)
    jerk = np.abs(np.diff(a)) / dt
    assert np.all(np.abs(a) <= 3.0 + 1e-9)
    assert np.sort(jerk)[-3] <= 50.0 + 1e-6, "only landing steps may exceed the jerk bound"
    assert max(v[:20]) <= 0.1 + 1e-12 and max(v) <= 0.25 + 1e-12, "no overshoot"
    assert v[19] == pytest.approx(0.1) and v[-1] == pytest.approx(0.25)


def test_blending_averages_overlapping_chunks():
    free = lim(max_linear_accel=1e9, max_linear_speed=9, max_linear_jerk=np.inf)
    ex = executor(blend="average", blend_decay=0.5, limits=free)
    ex.add_chunk(0.0, chunk(0.01), now=0.0)
    ex.add_chunk(0.05, chunk(0.04), now=0.05)
    cmd = ex.step(0.1, 0.02)  # newest weight 1, older 0.5
    assert cmd.linear[0] == pytest.approx((1 * 0.4 + 0.5 * 0.1) / 1.5)
    latest = executor(blend="latest", limits=free)
    latest.add_chunk(0.0, chunk(0.01), now=0.0)
    latest.add_chunk(0.05, chunk(0.04), now=0.05)
    assert latest.step(0.1, 0.02).linear[0] == pytest.approx(0.4)


@pytest.mark.parametrize("bad,why", [
    (np.full((16, 7), np.nan), "NaN"), (np.full((16, 7), np.inf), "NaN"), (np.zeros((16, 6)), "shape"),
    (np.zeros((0, 7)), "shape")])
def test_malformed_chunks_rejected(bad, why):
    ex = executor()
    assert why in ex.add_chunk(0.0, bad, now=0.0)
    assert not ex.step(0.0, 0.02).active


@pytest.mark.parametrize("column,value,why", [
    (0, 1e9, "linear speed"), (1, 0.1, "linear speed"), (4, 0.31, "angular speed"), (6, 7.0, "gripper"),
    (6, -1.0, "gripper")])
def test_implausible_chunks_refused_not_clamped(column, value, why):
    """A step asking for more than 3x a speed limit (or a gripper far outside [0, 1]) refuses the whole chunk."""
    ex = executor(action_dt=0.1)
    a = chunk(vx_step=0.01)
    a[5, column] = value
    problem = ex.add_chunk(0.0, a, now=0.0)
    assert problem is not None and why in problem and "implausible" in problem
    assert not ex.step(0.0, 0.02).active and not ex.step(0.02, 0.02).active
    assert ex.add_chunk(0.0, chunk(vx_step=0.089), now=0.0) is None, "just under 3 x 0.3 m/s is plausible"
    assert "steps" in executor().add_chunk(0.0, chunk(n=1000), now=0.0)


def test_chunk_columns_mapped_by_name_and_timing_checked():
    a = chunk(vx_step=0.01)
    names = list(ACTION_NAMES)
    shuffled = names[::-1]
    ordered, problem = order_by_names(shuffled, a[:, ::-1])
    assert problem is None and np.array_equal(ordered, a)
    for bad in (names[:3], names + ["extra"], ["gripper"] * 7, [n.upper() for n in names]):
        assert order_by_names(bad, a[:, :len(bad)] if len(bad) <= 7 else np.zeros((16, len(bad))))[1]
    assert chunk_period([0.0, 0.1, 0.2], 0.1, (0.01, 1.0)) == (pytest.approx(0.1), None)
    assert chunk_period([0.0, 0.2, 0.4], 0.1, (0.01, 1.0)) == (pytest.approx(0.2), None)  # the chunk's own period
    assert chunk_period([0.0], 0.1, (0.01, 1.0)) == (0.1, None)  # one point: the executor's default
    assert "uneven" in chunk_period([0.0, 0.1, 0.25], 0.1, (0.01, 1.0))[1]
    assert "outside" in chunk_period([0.0, 5.0, 10.0], 0.1, (0.01, 1.0))[1]
    assert "outside" in chunk_period([0.0, 0.0, 0.0], 0.1, (0.01, 1.0))[1]


def test_chunk_runs_at_its_own_period():
    """A model trained at 5 Hz (CogACT on Bridge: dt 0.2 s) sends 0.2 s steps: same speed, twice as long."""
    free = lim(max_linear_accel=1e9, max_linear_jerk=np.inf, workspace_min=None, workspace_max=None)
    for dt in (0.1, 0.2):
        ex = executor(limits=free, chunk_timeout=10.0)
        a = chunk(vx_step=0.02 * dt / 0.1, n=4)
        assert ex.add_chunk(0.0, a, now=0.0, times=[i * dt for i in range(4)]) is None
        assert ex.step(0.05, 0.02).linear[0] == pytest.approx(0.2)
        assert ex.step(4 * dt - 0.01, 0.02).active and not ex.step(4 * dt + 0.01, 0.02).active


def test_adaptive_ensemble_weights_agreeing_predictions_more():
    """CogACT's adaptive ensemble: weights exp(alpha * cos(prediction, newest)), normalised."""
    free = lim(max_linear_accel=1e9, max_linear_jerk=np.inf, workspace_min=None, workspace_max=None)
    ex = executor(limits=free, blend="adaptive", adaptive_alpha=2.0, chunk_timeout=10.0)
    old, new = chunk(vx_step=-0.01), chunk(vx_step=0.01)
    old[:, 6] = new[:, 6] = 0.0
    ex.add_chunk(0.0, old, now=0.0)
    ex.add_chunk(0.0, new, now=0.0)
    w_old, w_new = np.exp(2.0 * -1.0), np.exp(2.0 * 1.0)  # cosine -1 and 1 to the newest
    expected = (w_new * 0.1 - w_old * 0.1) / (w_old + w_new)
    assert ex.step(0.05, 0.02).linear[0] == pytest.approx(expected, rel=1e-3)  # CogACT adds 1e-7 to the norms


def test_stale_and_future_chunks_rejected():
    ex = executor(max_chunk_age=0.5)
    assert "stale" in ex.add_chunk(0.0, chunk(), now=0.6)
    assert "future" in ex.add_chunk(5.0, chunk(), now=0.0)


def test_halts_without_fresh_chunks():
    ex = executor(chunk_timeout=0.3)
    ex.add_chunk(0.0, chunk(), now=0.0)
    assert ex.step(0.2, 0.02).active
    cmd = ex.step(0.35, 0.02)
    assert not cmd.active and np.all(cmd.linear == 0) and "no fresh" in cmd.reason
    assert not ex.step(0.36, 0.02).active, "stays halted until a new chunk"


def test_chunk_running_out_halts():
    ex = executor(chunk_timeout=10.0)
    ex.add_chunk(0.0, chunk(n=3), now=0.0)
    assert ex.step(0.29, 0.02).active
    assert not ex.step(0.31, 0.02).active


def test_blending_and_limits_smooth_chunk_boundaries():
    """Chunks that disagree (a new plan every 0.2 s): blending + limits cut the velocity jumps."""
    from molevla_ros.bench.smoothness import SETTINGS, metrics, replay

    rng = np.random.default_rng(0)
    chunks = [(0.2 * i, chunk(vx_step=float(rng.uniform(0.0, 0.03)))) for i in range(30)]
    jump = {}
    for s in SETTINGS:
        _, vel, bounds = replay(chunks, s, latency=0.1)
        jump[s.name] = metrics(vel, bounds, 0.02)["boundary_jump_max"]
    assert jump["blended + limits (default)"] <= 3.0 * 0.02 + 1e-9  # the acceleration bound per 20 ms tick
    assert jump["blended + limits (default)"] < 0.5 * jump["newest chunk, no limits"]


def test_a_halt_always_reaches_the_output_then_motion_ramps_from_zero():
    limits = lim(max_linear_speed=0.3, max_linear_accel=3.0)
    ex = executor(limits=limits, chunk_timeout=10.0)
    ex.add_chunk(0.0, chunk(vx_step=0.02), now=0.0)
    for k in range(20):
        v = ex.step(k * 0.02, 0.02).linear[0]
    assert v == pytest.approx(0.2)
    ex.halt("bad chunk")
    ex.add_chunk(0.4, chunk(vx_step=0.02), now=0.4)  # a good chunk arrives before the next tick
    cmd = ex.step(0.4, 0.02)
    assert not cmd.active and cmd.linear[0] == 0.0 and cmd.reason == "bad chunk"
    assert 0.0 < ex.step(0.42, 0.02).linear[0] <= 3.0 * 0.02 + 1e-12, "ramps up again within the accel limit"


def test_workspace_box_stops_outward_motion_and_never_pushes():
    from molevla_ros.control.chunk_executor import workspace_clamp

    limits = lim(workspace_min=(0.2, -0.5, 0.0), workspace_max=(0.8, 0.5, 0.7), workspace_approach_s=0.25)
    inside = np.array([0.5, 0.0, 0.3])
    np.testing.assert_allclose(workspace_clamp(np.array([0.2, -0.1, 0.0]), inside, limits), [0.2, -0.1, 0.0])
    near = np.array([0.78, 0.0, 0.3])  # 2 cm from the +x face: at most 0.02 / 0.25 = 0.08 m/s towards it
    np.testing.assert_allclose(workspace_clamp(np.array([0.3, 0.0, 0.0]), near, limits), [0.08, 0.0, 0.0])
    outside = np.array([0.9, 0.0, -0.05])
    np.testing.assert_allclose(workspace_clamp(np.array([0.1, 0.0, -0.1]), outside, limits), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(workspace_clamp(np.array([-0.1, 0.0, 0.1]), outside, limits), [-0.1, 0.0, 0.1])
    np.testing.assert_allclose(workspace_clamp(np.zeros(3), outside, limits), np.zeros(3), err_msg="never pushes")
    ex = executor(limits=limits, chunk_timeout=10.0)  # closed loop: the hand never crosses the face
    ex.add_chunk(0.0, chunk(vx_step=0.03), now=0.0)
    x = 0.7
    for k in range(100):
        x += ex.step(k * 0.02, 0.02, np.array([x, 0.0, 0.3])).linear[0] * 0.02
    assert 0.79 < x <= 0.8


def test_rotation_deltas_turn_the_arm_about_cogacts_axis_angle():
    """A chunk's roll / pitch / yaw deltas are static x-y-z Euler angles; CogACT's deploy code turns them into
    axis-angle with transforms3d's euler2axangle (sim_cogact/cogact_policy.py, lines 159-163) before the arm turns.
    The angular velocity must be that rotation over the step's time, not the Euler numbers read as a rotation."""
    from transforms3d.euler import euler2axangle

    free = lim(max_angular_speed=10.0, max_angular_accel=1e9, max_angular_jerk=np.inf)
    for rpy in [(0.05, 0.0, 0.0), (0.5, -0.4, 0.45), (0.3, 0.3, -0.3)]:
        ex = executor(action_dt=0.2, limits=free)
        a = chunk(vx_step=0.0)
        a[:, 3:6] = rpy
        assert ex.add_chunk(0.0, a, now=0.0, times=list(np.arange(16) * 0.2)) is None
        axis, angle = euler2axangle(*rpy, "sxyz")
        np.testing.assert_allclose(ex.step(0.1, 0.02).angular, np.asarray(axis) * angle / 0.2, atol=1e-9)
        plan = ex.plan(0.0, 3, 0.2)  # what real-time chunking continues: the chunks' own convention
        np.testing.assert_allclose(plan[:, 3:6], [rpy] * 3, atol=1e-12)


def cogact_adaptive_ensemble(history: list[np.ndarray], alpha: float) -> np.ndarray:
    """CogACT's AdaptiveEnsembler.ensemble_action (sim_cogact/adaptive_ensemble.py, microsoft/CogACT), restated:
    the prediction made i steps ago contributes its action i; weights exp(alpha * cos(action, newest's)),
    normalised; cosine with 1e-7 added to the norms' product."""
    n = len(history)
    preds = np.stack([p[i] for i, p in zip(range(n - 1, -1, -1), history)])
    ref = preds[n - 1]
    cos = preds @ ref / (np.linalg.norm(preds, axis=1) * np.linalg.norm(ref) + 1e-7)
    w = np.exp(alpha * cos)
    return (w[:, None] / w.sum() * preds).sum(0)


@pytest.mark.parametrize("window", [2, 7])
def test_adaptive_ensemble_over_its_window_is_cogacts(window):
    """One prediction per executed action, the last `window` blended (CogACT: 7 on Bridge, 2 on the Google robot):
    the executor's blended step equals CogACT's ensembled action (rotation then turned into axis-angle)."""
    from transforms3d.euler import euler2axangle

    dt, rng = 0.2, np.random.default_rng(window)
    free = lim(max_linear_speed=10.0, max_angular_speed=10.0, max_linear_accel=1e9, max_angular_accel=1e9,
               max_linear_jerk=np.inf, max_angular_jerk=np.inf)
    ex = executor(action_dt=dt, limits=free, blend="adaptive", adaptive_alpha=0.1, max_chunks=window,
                  chunk_timeout=10.0)
    history: list[np.ndarray] = []
    for k in range(12):
        pred = np.concatenate([rng.normal(0, 0.02, (16, 6)), rng.integers(0, 2, (16, 1))], 1)
        assert ex.add_chunk(k * dt, pred, now=k * dt, times=list(np.arange(16) * dt)) is None
        history = (history + [pred])[-window:]
        ref = cogact_adaptive_ensemble(history, 0.1)
        got = ex.step(k * dt + 1e-6, 0.02).wanted
        axis, angle = euler2axangle(*ref[3:6], "sxyz")
        np.testing.assert_allclose(got[:3] * dt, ref[:3], atol=1e-9)
        np.testing.assert_allclose(got[3:6] * dt, np.asarray(axis) * angle, atol=1e-9)
        assert got[6] == pytest.approx(ref[6], abs=1e-9)


def test_a_models_own_range_is_plausible_and_clamped_not_refused():
    """A fractal-scale CogACT step (0.2 m per axis in 1/3 s, ~1 m/s) is beyond 3x the FR3 profile's 0.3 m/s: without
    the model's speeds it is refused; with them (model_hints.model_speeds of its action range) it is accepted and
    the arm is held to the profile's limit. A lowered speed_scale never makes a chunk implausible."""
    from molevla_ros.model_hints import model_speeds
    from molevla_ros.robot_profile import load

    fr3 = load("fr3").limits
    a = chunk(vx_step=0.2, n=8)
    a[:, 1:3] = 0.2
    times = list(np.arange(8) / 3)
    assert "implausible" in executor(1 / 3, Limits.from_profile(fr3)).add_chunk(0.0, a, 0.0, times)
    q99 = [0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 1.0]
    speeds = model_speeds([-v for v in q99], q99, 1 / 3)
    ex = executor(1 / 3, Limits.from_profile(fr3, model_speeds=speeds), chunk_timeout=10.0)
    assert ex.add_chunk(0.0, a, 0.0, times) is None
    for i in range(100):
        cmd = ex.step(0.01 * i, 0.01)
    assert np.linalg.norm(cmd.linear) == pytest.approx(fr3.max_linear_speed)
    slow = executor(0.1, Limits.from_profile(fr3, speed_scale=0.3))  # 0.09 m/s allowed, 0.5 m/s still plausible
    assert slow.add_chunk(0.0, chunk(vx_step=0.05), 0.0) is None
