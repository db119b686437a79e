import numpy as np
import pytest

from molevla_ros.control.chunk_executor import (ACTION_NAMES, ChunkExecutor, Limits, chunk_period, limit_motion,
                                              order_by_names, validate_chunk)

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


def test_out_of_order_chunks_are_refused_and_the_newer_one_runs_on():
    ex = executor(blend="latest", max_chunk_age=0.5)
    assert ex.add_chunk(10.0, chunk(0.02), now=10.0) is None
    back = chunk(-0.02)
    back[:, 6] = 0.0  # would close the hand
    problem = ex.add_chunk(9.7, back, now=10.05)
    assert problem == "chunk is out of order (stamped 0.300 s before the chunk already queued)"
    cmd = ex.step(10.05, 0.02)
    assert cmd.active and cmd.linear[0] > 0 and cmd.gripper_open == 1.0, "the queued, newer chunk still leads"
    assert ex.add_chunk(10.0, chunk(0.02), now=10.06) is None, "the same stamp again is not out of order"


@pytest.mark.parametrize("turn", [2 * np.pi + 0.01, -np.pi - 0.01, 10 * np.pi])
def test_euler_steps_beyond_pi_are_refused_not_wrapped(turn):
    """2 pi + 0.01 rad wraps to a plausible 0.01, but blending averages the angles as written: refused whole."""
    a = chunk()
    a[3, 4] = turn
    assert validate_chunk(a).startswith(f"implausible chunk: step 3 turns {abs(turn):.3g} rad about one axis")
    assert executor().add_chunk(0.0, a, now=0.0).startswith("implausible chunk: step 3")
    a[3, 4] = np.pi  # the edge of the range is a (fast) step, judged by the speed limits
    assert validate_chunk(a) is None


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


# --- Refusal reasons, boundaries and defaults an operator relies on -----------------------------------------------


def test_limits_from_profile_take_each_field_from_the_profile():
    """Every Limits field comes from its own profile field (a profile with all values distinct), speeds scaled."""
    import dataclasses

    from molevla_ros.robot_profile import load

    robot = dataclasses.replace(load("fr3").limits, max_linear_speed=0.25, max_angular_speed=0.75,
                                max_linear_accel=2.0, max_angular_accel=6.0, max_linear_jerk=40.0,
                                max_angular_jerk=300.0, workspace_min=(0.1, -0.4, 0.02), workspace_max=(0.9, 0.45, 0.8))
    common = dict(max_linear_accel=2.0, max_angular_accel=6.0, max_linear_jerk=40.0, max_angular_jerk=300.0,
                  workspace_min=(0.1, -0.4, 0.02), workspace_max=(0.9, 0.45, 0.8))
    assert Limits.from_profile(robot) == Limits(
        max_linear_speed=0.25, max_angular_speed=0.75, **common, workspace_approach_s=0.25, plausibility_margin=3.0,
        plausible_linear_speed=0.75, plausible_angular_speed=2.25)
    # the model's speeds win where they are more (linear 2 > 4 x 0.25, angular 5 > 4 x 0.75) ...
    assert Limits.from_profile(robot, speed_scale=0.5, workspace_approach_s=0.125, plausibility_margin=4.0,
                               model_speeds=(2.0, 5.0)) == Limits(
        max_linear_speed=0.125, max_angular_speed=0.375, **common, workspace_approach_s=0.125,
        plausibility_margin=4.0, plausible_linear_speed=2.0, plausible_angular_speed=5.0)
    # ... and the margin times the unscaled profile speeds where those are more
    assert Limits.from_profile(robot, speed_scale=0.5, plausibility_margin=4.0, model_speeds=(0.5, 1.0)) == Limits(
        max_linear_speed=0.125, max_angular_speed=0.375, **common, workspace_approach_s=0.25,
        plausibility_margin=4.0, plausible_linear_speed=1.0, plausible_angular_speed=3.0)


@pytest.mark.parametrize("name", ["fr3", "panda_sim"])
def test_limits_from_profile_keep_or_disable_the_workspace_box(name):
    import dataclasses

    from molevla_ros.robot_profile import load

    robot = load(name).limits
    boxed = Limits.from_profile(robot)
    assert boxed.workspace_min == tuple(robot.workspace_min) and boxed.workspace_max == tuple(robot.workspace_max)
    assert len(boxed.workspace_min) == 3
    unboxed = Limits.from_profile(dataclasses.replace(robot, workspace_min=(), workspace_max=()))
    assert unboxed.workspace_min is None and unboxed.workspace_max is None, "an empty box in the profile disables it"


@pytest.mark.parametrize("bad,reason", [
    (np.full((16, 7), np.nan), "chunk contains NaN or Inf"),
    (np.full((16, 7), -np.inf), "chunk contains NaN or Inf"),
    (np.zeros((16, 6)), "chunk shape (16, 6) is not (N>0, 7)"),
    (np.zeros((0, 7)), "chunk shape (0, 7) is not (N>0, 7)")])
def test_malformed_chunk_reasons(bad, reason):
    assert validate_chunk(bad) == reason
    assert executor().add_chunk(0.0, bad, now=0.0) == reason


def _one_step(column, value, n=16, row=5):
    a = np.zeros((n, 7))
    a[:, 6] = 1.0
    a[row, column] = value
    return a


@pytest.mark.parametrize("column,value,changes,reason", [
    (0, 0.1, {}, "implausible chunk: step 5 asks for linear speed 1 m/s (> 3 x the 0.3 m/s limit)"),
    (2, -0.25, {"plausible_linear_speed": 2.0},
     "implausible chunk: step 5 asks for linear speed 2.5 m/s (> the plausible 2 m/s)"),
    (3, 0.31, {}, "implausible chunk: step 5 asks for angular speed 3.1 rad/s (> 3 x the 1 rad/s limit)"),
    (3, 0.6, {"plausible_angular_speed": 5.0},
     "implausible chunk: step 5 asks for angular speed 6 rad/s (> the plausible 5 rad/s)"),
    (5, -0.4, {}, "implausible chunk: step 5 asks for angular speed 4 rad/s (> 3 x the 1 rad/s limit)"),
    (6, 7.0, {}, "implausible chunk: gripper command 7 outside [-0.5, 1.5]"),
    (6, -1.0, {}, "implausible chunk: gripper command -1 outside [-0.5, 1.5]"),
    (6, 2.0, {}, "implausible chunk: gripper command 2 outside [-0.5, 1.5]")])
def test_implausible_chunk_reasons(column, value, changes, reason):
    """The operator sees which step, which speed, and which bound (the plausible speed, or margin x the limit)."""
    assert validate_chunk(_one_step(column, value), 0.1, lim(**changes)) == reason


def test_gripper_reason_names_the_command_farthest_outside():
    a = _one_step(6, -0.6, row=2)
    a[7, 6] = 2.0  # 1.5 above the middle of [0, 1]; -0.6 is 1.1 below it
    assert validate_chunk(a, 0.1, lim()) == "implausible chunk: gripper command 2 outside [-0.5, 1.5]"
    a[7, 6] = 1.55
    assert validate_chunk(a, 0.1, lim()) == "implausible chunk: gripper command -0.6 outside [-0.5, 1.5]"


@pytest.mark.parametrize("column,at,changes", [
    (0, 0.5, {"plausible_linear_speed": 1.0}),  # 0.5 m per 0.5 s step: exactly the plausible 1 m/s
    (1, 0.375, {"max_linear_speed": 0.25}),  # exactly 3 x 0.25 m/s
    (3, 1.0, {"plausible_angular_speed": 2.0}),
    (5, 0.75, {"max_angular_speed": 0.5}),
    (6, 1.5, {}), (6, -0.5, {})])
def test_a_chunk_exactly_at_a_plausibility_bound_is_accepted_just_above_refused(column, at, changes):
    limits = lim(**changes)
    assert validate_chunk(_one_step(column, at), 0.5, limits) is None
    beyond = at + np.copysign(1e-6, at)
    assert validate_chunk(_one_step(column, beyond), 0.5, limits).startswith("implausible chunk")


def test_plausibility_needs_both_the_period_and_the_limits():
    """Without a period or without limits only shape and finiteness are checked (as a driver without a profile)."""
    fast = _one_step(0, 100.0)
    assert validate_chunk(fast, 0.1, None) is None
    assert validate_chunk(fast, None, lim()) is None
    assert validate_chunk(fast, 0.1, lim()).startswith("implausible chunk: step 5 asks for linear speed")


def test_order_by_names_refusals_return_no_actions():
    bad_names = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "grip"]
    for names, actions, reason in [
            (bad_names, np.zeros((16, 7)),
             f"chunk names {bad_names} are not the action names {ACTION_NAMES} (any order)"),
            (ACTION_NAMES, np.zeros((16, 6)), "chunk shape (16, 6) does not match its 7 names"),
            (ACTION_NAMES, np.zeros((16, 8)), "chunk shape (16, 8) does not match its 7 names"),
            (ACTION_NAMES, np.zeros(7), "chunk shape (7,) does not match its 7 names")]:
        ordered, problem = order_by_names(names, actions)
        assert problem == reason
        assert ordered.shape == (0, 7), "a refused chunk yields no actions"


@pytest.mark.parametrize("times,dt,reason", [
    ([0.0, 0.01, 0.02], 0.01, None),  # exactly the shortest period allowed
    ([0.0, 1.0, 2.0], 1.0, None),  # exactly the longest
    ([0.0, 0.005, 0.01], 0.005, "chunk period 0.005 s is outside [0.01, 1.0] s"),
    ([0.0, 1.5, 3.0], 1.5, "chunk period 1.5 s is outside [0.01, 1.0] s"),
    ([0.0, 0.1, 0.25], 0.1, "chunk point 2 is at 0.2500 s, expected 0.2000 s (uneven time_from_start)"),
    ([0.1, 0.2, 0.3], 0.1, "chunk point 0 is at 0.1000 s, expected 0.0000 s (uneven time_from_start)")])
def test_chunk_period_boundaries_and_reasons(times, dt, reason):
    """The same reason reaches the producer through add_chunk, and a refused chunk is never queued."""
    assert chunk_period(times, 0.1, (0.01, 1.0)) == (pytest.approx(dt), reason)
    ex = executor(action_dt=0.1)
    assert ex.add_chunk(0.0, chunk(vx_step=0.001, n=len(times)), now=0.0, times=times) == reason
    assert ex.step(0.0, 0.02).active == (reason is None)


def test_chunk_period_point_exactly_at_the_tolerance_is_accepted():
    tol = 2.0 ** -10
    assert chunk_period([0.0, 0.25, 0.5 + tol], 0.1, (0.01, 1.0), tolerance=tol) == (0.25, None)
    assert chunk_period([0.0, 0.25, 0.5 + 2 * tol], 0.1, (0.01, 1.0), tolerance=tol)[1].startswith("chunk point 2")


def test_chunk_length_limit_is_inclusive():
    ex = executor()
    assert ex.add_chunk(0.0, chunk(vx_step=0.001, n=256), now=0.0) is None
    assert ex.add_chunk(0.0, chunk(vx_step=0.001, n=257), now=0.0) == "chunk has 257 steps (> 256)"


def test_chunk_given_as_plain_int_lists_is_accepted_and_runs():
    """A chunk as nested Python lists of ints (hold still, gripper open) runs like a float array."""
    ex = executor()
    assert ex.add_chunk(0.0, [[0, 0, 0, 0, 0, 0, 1]] * 4, now=0.0) is None
    cmd = ex.step(0.05, 0.02)
    assert cmd.active and cmd.gripper_open == 1.0 and np.all(cmd.linear == 0) and np.all(cmd.angular == 0)


def test_default_chunk_age_and_timeout_boundaries_and_reasons():
    """Defaults: a chunk up to 0.5 s old (or 0.5 s in the future) is accepted; 0.5 s without a chunk still tracks."""
    ex = ChunkExecutor(0.1, lim())
    assert ex.add_chunk(0.0, chunk(), now=0.6) == "chunk is stale (0.600 s old > 0.5 s)"
    assert ex.add_chunk(0.6, chunk(), now=0.0) == "chunk stamp is 0.600 s in the future (clock jump?)"
    assert ChunkExecutor(0.1, lim()).add_chunk(0.5, chunk(), now=0.0) is None
    assert ex.add_chunk(0.0, chunk(), now=0.5) is None
    assert ex.step(1.0, 0.02).reason == "tracking", "exactly chunk_timeout after the last chunk"
    cmd = ex.step(1.1, 0.02)
    assert not cmd.active and cmd.reason == "no fresh action chunk for 0.60 s"


def test_default_blending_decay_window_and_adaptive_alpha():
    """Defaults: average with weights 0.5^k over the newest 4 chunks; adaptive with CogACT's alpha 0.1."""
    ex = ChunkExecutor(0.1, lim())
    steps = [0.001, 0.002, 0.004, 0.008, 0.016]  # oldest first
    for v in steps:
        assert ex.add_chunk(0.0, chunk(vx_step=v), now=0.0) is None
    w = 0.5 ** np.arange(4)
    newest_four = np.array(steps[::-1][:4]) / 0.1
    assert ex.step(0.05, 0.02).wanted[0] == pytest.approx((w * newest_four).sum() / w.sum())
    adaptive = ChunkExecutor(0.1, lim(), blend="adaptive")
    old, new = chunk(vx_step=-0.01, grip=0.0), chunk(vx_step=0.01, grip=0.0)
    adaptive.add_chunk(0.0, old, now=0.0)
    adaptive.add_chunk(0.0, new, now=0.0)
    expected = cogact_adaptive_ensemble([old, new], alpha=0.1)[0] / 0.1  # weights exp(0.1 * cos), cos -1 and 1
    assert adaptive.step(0.05, 0.02).wanted[0] == pytest.approx(expected, rel=1e-9)


def test_unknown_blend_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"^blend must be one of \('average', 'latest', 'adaptive'\), not 'mean'$"):
        ChunkExecutor(0.1, lim(), blend="mean")


def test_halt_reasons_reach_the_operator():
    ex = executor(chunk_timeout=10.0)
    first = ex.step(0.0, 0.02)
    assert not first.active and first.reason == "no action chunk yet" and first.gripper_open is None
    ex.add_chunk(0.0, chunk(n=2), now=0.0)
    assert ex.step(0.1, 0.02).reason == "tracking"
    ran_out = ex.step(0.25, 0.02)
    assert not ran_out.active and ran_out.reason == "the last action chunk ran out" and ran_out.gripper_open is None
    ex.add_chunk(0.3, chunk(), now=0.3)
    ex.halt()
    assert ex.step(0.3, 0.02).reason == "halted"
    assert ex.step(0.32, 0.02).reason == "halted", "stays halted (not tracking) until the next chunk"


@pytest.mark.parametrize("grip,opened", [(0.0, 0.0), (0.49, 0.0), (0.5, 1.0), (1.0, 1.0), (1.4, 1.0), (-0.4, 0.0)])
def test_gripper_command_is_open_from_one_half(grip, opened):
    ex = executor()
    ex.add_chunk(0.0, chunk(grip=grip), now=0.0)
    cmd = ex.step(0.05, 0.02)
    assert cmd.active and cmd.reason == "tracking" and cmd.gripper_open == opened


def test_an_ended_chunk_gives_up_its_blending_slot():
    """With max_chunks 2, a one-step chunk that has run out must not push a still-running chunk out of the blend."""
    free = lim(max_linear_accel=1e9, max_linear_jerk=np.inf)
    ex = executor(limits=free, max_chunks=2)
    ex.add_chunk(0.0, chunk(vx_step=0.01), now=0.0)  # 0.1 m/s for 1.6 s
    ex.add_chunk(0.0, chunk(vx_step=0.03, n=1), now=0.0)  # ends at 0.1 s
    assert ex.step(0.15, 0.02).wanted[0] == pytest.approx(0.1)
    ex.add_chunk(0.15, chunk(vx_step=0.02), now=0.15)
    assert ex.step(0.2, 0.02).wanted[0] == pytest.approx((1.0 * 0.2 + 0.5 * 0.1) / 1.5)


def test_plan_samples_each_step_middle_and_ends_with_the_queue():
    ex = executor(action_dt=0.1)
    a = chunk(n=4, grip=0.0)
    a[:, 0] = [0.001, 0.002, 0.003, 0.004]
    a[2:, 6] = 1.0
    ex.add_chunk(0.0, a, now=0.0)
    plan = ex.plan(0.0, 6, 0.1)
    assert plan.shape == (4, 7), "ends where no chunk covers"
    np.testing.assert_allclose(plan[:, 0], a[:, 0])
    np.testing.assert_array_equal(plan[:, 6], [0.0, 0.0, 1.0, 1.0])  # the gripper as is, never times dt
    half = ex.plan(0.0, 10, 0.05)  # deltas over the plan's own dt
    np.testing.assert_allclose(half[:, 0], np.repeat(a[:, 0], 2) / 2)
    np.testing.assert_array_equal(half[:, 6], np.repeat(a[:, 6], 2))
    assert ex.plan(0.5, 3, 0.1).shape == (0, 7), "nothing queued at that time: an empty plan"


@pytest.mark.parametrize("face,ee", [
    ((0, -1), [0.22, 0.0, 0.3]), ((1, -1), [0.5, -0.48, 0.3]), ((2, -1), [0.5, 0.0, 0.02]),
    ((1, 1), [0.5, 0.48, 0.3]), ((2, 1), [0.5, 0.0, 0.68])])
def test_workspace_box_slows_motion_towards_every_face(face, ee):
    from molevla_ros.control.chunk_executor import workspace_clamp

    limits = lim(workspace_min=(0.2, -0.5, 0.0), workspace_max=(0.8, 0.5, 0.7), workspace_approach_s=0.25)
    axis, sign = face
    want = np.zeros(3)
    want[axis] = 0.3 * sign  # 2 cm from the face: at most 0.02 / 0.25 = 0.08 m/s towards it
    expected = np.zeros(3)
    expected[axis] = 0.08 * sign
    np.testing.assert_allclose(workspace_clamp(want, np.array(ee), limits), expected)
    np.testing.assert_allclose(workspace_clamp(-want, np.array(ee), limits), -want, err_msg="away is free")


def test_a_tick_without_elapsed_time_keeps_the_motion():
    """dt = 0 (two ticks at one time) changes nothing: same velocity, same acceleration, no division by zero."""
    vel, acc = np.array([0.1, 0.0, 0.0]), np.array([1.0, 0.0, 0.0])
    new_vel, new_acc = limit_motion(np.array([0.3, 0.0, 0.0]), vel, acc, 0.0, 0.3, 3.0, 50.0)
    np.testing.assert_array_equal(new_vel, vel)
    np.testing.assert_array_equal(new_acc, acc)
    ex = executor(chunk_timeout=10.0)
    ex.add_chunk(0.0, chunk(vx_step=0.02), now=0.0)
    moving = ex.step(0.1, 0.02).linear
    np.testing.assert_array_equal(ex.step(0.1, 0.0).linear, moving)


@pytest.mark.parametrize("target,dt", [(0.05, 0.01), (0.2, 0.01), (0.2, 0.02), (0.25, 0.02), (0.3, 0.01)])
def test_jerk_bound_holds_on_every_step_but_the_landing_one(target, dt):
    """From rest to a velocity: the acceleration ramps down in time (braking), so only the step that lands on the
    target may change the acceleration faster than the jerk bound, and the velocity never overshoots."""
    vel, acc, vels, accs = np.zeros(3), np.zeros(3), [np.zeros(3)], [np.zeros(3)]
    want = np.array([target, 0.0, 0.0])
    for _ in range(int(1.0 / dt)):
        vel, acc = limit_motion(want, vel, acc, dt, 0.3, 3.0, 50.0)
        vels.append(vel)
        accs.append(acc)
    vx = np.array(vels)[:, 0]
    landing = int(np.argmax(vx == target))
    assert landing > 0 and np.all(vx <= target)
    jerk = np.linalg.norm(np.diff(accs, axis=0), axis=1) / dt  # jerk[k]: the change on step k + 1
    assert np.all(np.delete(jerk, landing - 1) <= 50.0 * (1 + 1e-9))
    assert np.all(np.linalg.norm(accs, axis=1) <= 3.0 + 1e-12)


def test_no_jerk_limit_computes_without_invalid_values():
    """An infinite jerk limit means no jerk limit, not an inf * 0 (NaN) braking term."""
    with np.errstate(invalid="raise"):
        vel, acc = limit_motion(np.array([0.2, 0.0, 0.0]), np.zeros(3), np.zeros(3), 0.02, 0.3, 3.0, np.inf)
    np.testing.assert_allclose(vel, [0.06, 0.0, 0.0])
    np.testing.assert_allclose(acc, [3.0, 0.0, 0.0])


def test_reaching_the_target_along_the_change_lands_on_it_exactly():
    """The velocity has reached the target along the change (0.25 m/s in x) while a sideways acceleration is still
    being ramped down: it lands on the target, with no leftover sideways velocity."""
    vel, acc = limit_motion(np.array([0.25, 0.0, 0.0]), np.zeros(3), np.array([0.5, 1.5, 0.0]), 0.5,
                            max_speed=1.0, max_accel=2.0, max_jerk=1.0)
    np.testing.assert_array_equal(vel, [0.25, 0.0, 0.0])
    np.testing.assert_array_equal(acc, [0.5, 0.0, 0.0])


def test_a_locked_axis_holds_still_while_the_other_moves():
    """max_angular_speed 0 (rotation locked; the model's angular range still plausible): the hand translates and
    never turns, whether or not a step asks for a rotation."""
    limits = lim(max_angular_speed=0.0, plausible_angular_speed=1.0, max_linear_accel=1e9, max_linear_jerk=np.inf)
    ex = executor(limits=limits, chunk_timeout=10.0)
    a = chunk(vx_step=0.02, n=4)
    a[:2, 5] = 0.05  # the first two steps ask for a yaw, the last two do not
    assert ex.add_chunk(0.0, a, now=0.0) is None
    for t in (0.05, 0.15, 0.25, 0.35):
        cmd = ex.step(t, 0.02)
        assert cmd.active and cmd.linear[0] == pytest.approx(0.2) and np.all(cmd.angular == 0.0)
