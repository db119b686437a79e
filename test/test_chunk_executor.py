import numpy as np
import pytest

from molevla_ros.control.chunk_executor import ChunkExecutor, Limits


def chunk(vx_step=0.02, n=16, grip=1.0):
    a = np.zeros((n, 7))
    a[:, 0] = vx_step
    a[:, 6] = grip
    return a


def test_rows_indexed_by_stamp_and_latency_compensated():
    ex = ChunkExecutor(action_dt=0.1, limits=Limits(max_linear_accel=1e9))
    a = chunk()
    a[:, 0] = np.arange(16) * 0.001  # row i asks for i mm per step
    assert ex.add_chunk(10.0, a, now=10.25) is None  # arrives 0.25 s late
    cmd = ex.step(10.25, 0.02)
    assert cmd.active and cmd.linear[0] == pytest.approx(0.002 / 0.1), "row 2 is due at t = stamp + 0.25 s"


def test_speed_and_accel_limits_hold():
    lim = Limits(max_linear_speed=0.3, max_linear_accel=2.0)
    ex = ChunkExecutor(limits=lim, chunk_timeout=10.0)
    ex.add_chunk(0.0, chunk(vx_step=0.5), now=0.0)  # asks for 5 m/s
    v, prev = [], 0.0
    for k in range(50):
        cmd = ex.step(k * 0.02, 0.02)
        v.append(cmd.linear[0])
        assert abs(cmd.linear[0] - prev) <= 2.0 * 0.02 + 1e-12
        prev = cmd.linear[0]
    assert max(v) == pytest.approx(0.3) and max(v) <= 0.3 + 1e-12


def test_blending_averages_overlapping_chunks():
    ex = ChunkExecutor(blend="average", blend_decay=0.5, limits=Limits(max_linear_accel=1e9, max_linear_speed=9))
    ex.add_chunk(0.0, chunk(0.01), now=0.0)
    ex.add_chunk(0.05, chunk(0.04), now=0.05)
    cmd = ex.step(0.1, 0.02)  # newest weight 1, older 0.5
    assert cmd.linear[0] == pytest.approx((1 * 0.4 + 0.5 * 0.1) / 1.5)
    latest = ChunkExecutor(blend="latest", limits=Limits(max_linear_accel=1e9, max_linear_speed=9))
    latest.add_chunk(0.0, chunk(0.01), now=0.0)
    latest.add_chunk(0.05, chunk(0.04), now=0.05)
    assert latest.step(0.1, 0.02).linear[0] == pytest.approx(0.4)


@pytest.mark.parametrize("bad,why", [
    (np.full((16, 7), np.nan), "NaN"), (np.full((16, 7), np.inf), "NaN"), (np.zeros((16, 6)), "shape"),
    (np.zeros((0, 7)), "shape")])
def test_malformed_chunks_rejected(bad, why):
    ex = ChunkExecutor()
    assert why in ex.add_chunk(0.0, bad, now=0.0)
    assert not ex.step(0.0, 0.02).active


def test_stale_and_future_chunks_rejected():
    ex = ChunkExecutor(max_chunk_age=0.5)
    assert "stale" in ex.add_chunk(0.0, chunk(), now=0.6)
    assert "future" in ex.add_chunk(5.0, chunk(), now=0.0)


def test_halts_without_fresh_chunks():
    ex = ChunkExecutor(chunk_timeout=0.3)
    ex.add_chunk(0.0, chunk(), now=0.0)
    assert ex.step(0.2, 0.02).active
    cmd = ex.step(0.35, 0.02)
    assert not cmd.active and np.all(cmd.linear == 0) and "no fresh" in cmd.reason
    assert not ex.step(0.36, 0.02).active, "stays halted until a new chunk"


def test_chunk_running_out_halts():
    ex = ChunkExecutor(chunk_timeout=10.0)
    ex.add_chunk(0.0, chunk(n=3), now=0.0)
    assert ex.step(0.29, 0.02).active
    assert not ex.step(0.31, 0.02).active
