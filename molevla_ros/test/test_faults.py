"""The fault suite (molevla bench-faults) on the simulated loop: real processes, real DDS, real signals."""
from __future__ import annotations

import warnings

import pytest

from molevla_ros.bench.faults import (FAULTS, LIMITS, REFUSED_CHUNKS, REFUSED_JOINT_STATES, run_fault, run_refusals,
                                      run_stale_success)

# Upper bounds on a shared 2-core CI machine (the suite prints the measured values). Each bound is below
# what the fallback mechanisms would give (chunk_timeout_s 0.5 s, a chunk runs out after 1.6 s), so a
# broken detection path fails the test.
BOUND_S = {"kill": 0.45, "stall": LIMITS["camera_timeout_s"] + 0.25, "flood": 0.5,
           "joint states": LIMITS["joint_state_timeout_s"] + 0.25}


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name.split(" (")[0].split(":")[0] for f in FAULTS])
def test_fault_halts_within_bound_without_limit_violations_or_crashes(fault, tmp_path):
    bound = next((b for k, b in BOUND_S.items() if k in fault.name), 0.15)  # refused chunks: one tick + transport
    row = run_fault(fault, domain=170 + FAULTS.index(fault), log_dir=tmp_path)
    assert not row["crashed"], row
    assert row["speed_violations"] == 0 and row["accel_violations"] == 0, row
    if row["time_to_halt_ms"] is None or row["time_to_halt_ms"] > bound * 1e3:
        # One rerun on a fresh bring-up: CI once measured 1026 ms for a case that took 147-199 ms in 10 local
        # runs (its row did not say why; rows now carry max_command_gap_ms). A broken detection path misses the
        # bound on both runs.
        warnings.warn(f"over the bound, rerun once: {row}", stacklevel=1)
        row = run_fault(fault, domain=170 + FAULTS.index(fault), log_dir=tmp_path)
    assert row["time_to_halt_ms"] is not None and row["time_to_halt_ms"] <= bound * 1e3, row
    if fault.stays_halted:
        assert row["stays_halted"], row


def test_refused_inputs_cause_no_command_and_say_why(tmp_path):
    """Every bad chunk and joint state, sent with a goal active: no command moves the arm, each gets a status.
    The valid chunk sent last must move it, so an executor that moved nothing at all would fail."""
    rows = {r["input"]: r for r in run_refusals(domain=190, log_dir=tmp_path)}
    expected = [f"chunk: {k}" for k in REFUSED_CHUNKS] + [f"joint state: {k}" for k in REFUSED_JOINT_STATES]
    for name in expected:
        assert rows[name]["commands_moving"] == 0, rows[name]
        assert rows[name]["status"], f"no status for {name}"
    assert rows["chunk: valid (control: must move)"]["commands_moving"] > 5, rows
    assert rows["(no node crashed)"]["status"] == "ok", rows


def test_no_stale_success(tmp_path):
    """After a touch succeeds the sim's check stays true: a goal about another cube must not succeed from it."""
    row = run_stale_success(domain=191, log_dir=tmp_path)
    assert row["first_goal_succeeded"] and row["second_goal_running"], row
    assert row["stale_successes"] == 0, row
