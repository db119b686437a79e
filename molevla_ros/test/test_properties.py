"""Property-based tests (hypothesis) of the safety core: whatever the chunk, period, direction and tick, the
commanded motion stays within the limits; joint states are read by name in any order."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from molevla_ros.control.chunk_executor import ChunkExecutor, Limits, limit_motion
from molevla_ros.inputs.joint_states import JointStateError, read_joint_state

EPS = 1e-9
finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
vec3 = arrays(np.float64, 3, elements=finite)
LIMITS = Limits(max_linear_speed=0.3, max_angular_speed=1.0, max_linear_accel=3.0, max_angular_accel=8.0,
                max_linear_jerk=50.0, max_angular_jerk=400.0, workspace_min=None, workspace_max=None)


def _within(v: np.ndarray, limit: float) -> np.ndarray:
    return v * min(1.0, limit / max(float(np.linalg.norm(v)), EPS))


@settings(max_examples=400, deadline=None)
@given(want=vec3, vel=vec3, acc=vec3, dt=st.floats(1e-3, 0.2), speed=st.floats(0.01, 2.0), accel=st.floats(0.1, 20.0),
       jerk=st.one_of(st.floats(1.0, 1000.0), st.just(np.inf)))
def test_one_step_never_exceeds_speed_or_acceleration(want, vel, acc, dt, speed, accel, jerk):
    """From any state within the limits, towards any wanted velocity: |v| <= speed and |dv / dt| <= accel."""
    vel, acc = _within(vel, speed), _within(acc, accel)
    new_vel, new_acc = limit_motion(want, vel, acc, dt, speed, accel, jerk)
    assert np.linalg.norm(new_vel) <= speed * (1 + 1e-9) + EPS
    assert np.linalg.norm(new_vel - vel) / dt <= accel * (1 + 1e-6) + 1e-6
    np.testing.assert_allclose(new_acc, (new_vel - vel) / dt, atol=1e-9)


chunk_rows = st.integers(2, 24)  # one point would run at the executor's default period


@st.composite
def chunks(draw):
    """A plausible chunk (each step within 3 x the speed limits at its period), any direction, and its period."""
    from transforms3d.euler import axangle2euler

    dt = draw(st.floats(0.02, 0.5))
    n = draw(chunk_rows)
    lin = draw(arrays(np.float64, (n, 3), elements=st.floats(-1, 1)))
    ang = draw(arrays(np.float64, (n, 3), elements=st.floats(-1, 1)))
    lin = lin * 0.89 / np.maximum(np.linalg.norm(lin, axis=1, keepdims=True), 1) * dt  # <= 0.89 m/s per step
    ang = ang * 2.9 / np.maximum(np.linalg.norm(ang, axis=1, keepdims=True), 1) * dt  # <= 2.9 rad/s per step
    # as a chunk holds them: the Euler angles of those rotations (transforms3d)
    ang = np.array([axangle2euler(r, np.linalg.norm(r), "sxyz") if np.linalg.norm(r) > 0 else np.zeros(3)
                    for r in ang]).reshape(n, 3)
    grip = draw(arrays(np.float64, (n, 1), elements=st.floats(0, 1)))
    return np.hstack([lin, ang, grip]), dt


@settings(max_examples=150, deadline=None)
@given(first=chunks(), second=chunks(), tick=st.floats(0.002, 0.05), offset=st.floats(0.0, 0.4),
       blend=st.sampled_from(["average", "latest", "adaptive"]))
def test_commands_never_exceed_the_limits_for_any_chunks(first, second, tick, offset, blend):
    """Two overlapping chunks of any plausible content and period, ticked at any rate: every command's linear and
    angular speed and every change between commands stay within the limits (a halt to zero excepted)."""
    ex = ChunkExecutor(0.1, LIMITS, blend=blend, chunk_timeout=10.0, max_chunk_age=10.0)
    (a, dt_a), (b, dt_b) = first, second
    assert ex.add_chunk(0.0, a, now=0.0, times=[i * dt_a for i in range(len(a))]) is None
    prev, t, added = None, 0.0, False
    while t < 2.5:
        if not added and t >= offset:
            assert ex.add_chunk(offset, b, now=t, times=[i * dt_b for i in range(len(b))]) is None
            added = True
        cmd = ex.step(t, tick)
        lin, ang = cmd.linear, cmd.angular
        assert np.linalg.norm(lin) <= LIMITS.max_linear_speed + 1e-9
        assert np.linalg.norm(ang) <= LIMITS.max_angular_speed + 1e-9
        if cmd.active and prev is not None:
            assert np.linalg.norm(lin - prev[0]) <= LIMITS.max_linear_accel * tick + 1e-9
            assert np.linalg.norm(ang - prev[1]) <= LIMITS.max_angular_accel * tick + 1e-9
        prev = (lin, ang) if cmd.active else (np.zeros(3), np.zeros(3))
        t += tick


@settings(max_examples=100, deadline=None)
@given(direction=arrays(np.float64, 3, elements=st.floats(-1, 1)), ratio=st.floats(1.05, 2.9),
       angular=st.booleans())
def test_speed_limit_is_on_the_vector_not_each_axis(direction, ratio, angular):
    """Asked for `ratio` x the speed limit in any direction, the arm reaches exactly the limit in that direction
    (a rotation's direction is its axis: the chunk holds it as the Euler angles of that rotation, via transforms3d)."""
    from transforms3d.euler import axangle2euler

    assume(np.linalg.norm(direction) > 0.1)
    d = direction / np.linalg.norm(direction)
    limit = LIMITS.max_angular_speed if angular else LIMITS.max_linear_speed
    a = np.zeros((40, 7))
    if angular:
        a[:, 3:6] = axangle2euler(d, limit * ratio * 0.1, "sxyz")  # per 0.1 s step
    else:
        a[:, 0:3] = d * limit * ratio * 0.1
    a[:, 6] = 1.0
    ex = ChunkExecutor(0.1, LIMITS, chunk_timeout=10.0)
    assert ex.add_chunk(0.0, a, now=0.0) is None
    for k in range(150):
        cmd = ex.step(k * 0.02, 0.02)
    v = cmd.angular if angular else cmd.linear
    np.testing.assert_allclose(v, d * limit, atol=1e-6)


def test_diagonal_motion_is_limited_by_its_norm():
    """A concrete diagonal: 0.6 m/s along (1, 1, 1) gives 0.3 m/s along it (0.17 m/s per axis), never 0.3 per axis
    (0.52 m/s)."""
    a = np.zeros((40, 7))
    a[:, :3] = 0.06 / np.sqrt(3)
    ex = ChunkExecutor(0.1, LIMITS, chunk_timeout=10.0)
    ex.add_chunk(0.0, a, now=0.0)
    speeds = [np.linalg.norm(ex.step(k * 0.02, 0.02).linear) for k in range(100)]
    assert max(speeds) == pytest.approx(0.3, abs=1e-9)


ARM = [f"fr3_joint{i}" for i in range(1, 8)]
names_and_values = st.lists(st.sampled_from([f"other{i}" for i in range(6)] + ["fr3_finger_joint1"]), unique=True,
                            max_size=5)


@settings(max_examples=300, deadline=None)
@given(order=st.permutations(list(range(7))), extra=names_and_values, values=arrays(np.float64, 7,
       elements=st.floats(-3, 3)), extra_pos=st.integers(0, 12), seed=st.integers(0, 1000))
def test_joint_states_are_read_by_name_in_any_order_with_extra_joints(order, extra, values, extra_pos, seed):
    names = [ARM[i] for i in order]
    positions = [float(values[i]) for i in order]
    rng = np.random.default_rng(seed)
    for name in extra:  # other joints anywhere in the message, with their own values
        k = min(extra_pos, len(names))
        names.insert(k, name)
        positions.insert(k, float(rng.uniform(-9, 9)))
    q = read_joint_state(names, positions, stamp=10.0, now=10.0, expected=ARM, max_age=0.5)
    np.testing.assert_array_equal(q, values)


@settings(max_examples=100, deadline=None)
@given(order=st.permutations(list(range(7))), dup=st.integers(0, 6), where=st.integers(0, 7))
def test_a_joint_named_twice_is_refused_wherever_it_is(order, dup, where):
    names = [ARM[i] for i in order]
    names.insert(where, ARM[dup])
    with pytest.raises(JointStateError, match=f"names a joint twice: {ARM[dup]}"):
        read_joint_state(names, [0.0] * len(names), 10.0, 10.0, ARM, 0.5)
