"""The fault suite (molevla bench-faults) on the simulated loop: real processes, real DDS, real signals."""
from __future__ import annotations

import pytest

from molevla_ros.bench.faults import (FAULTS, LIMITS, REFUSED_CHUNKS, REFUSED_JOINT_STATES, run_fault, run_faults,
                                      run_refusals, run_stale_success)

ALONE = [f for f in FAULTS if f.stays_halted or f.executor]  # each needs a fresh bring-up
SHARED = [f for f in FAULTS if f not in ALONE]  # refused chunks: the next good chunk resumes, one bring-up for all


def check(fault, row) -> None:
    """Within its bound, for its reason, no limit violated, no node crashed, halted for good where it must be."""
    assert not row["crashed"], row
    assert row["speed_violations"] == 0 and row["accel_violations"] == 0, row
    assert row["time_to_halt_ms"] is not None and row["time_to_halt_ms"] <= fault.bound_s * 1e3, row
    assert row["reason_found"], (row["reason"], row)
    if fault.stays_halted:
        assert row["stays_halted"], row


@pytest.mark.parametrize("fault", ALONE, ids=[f.name.split(" (")[0].split(":")[0] for f in ALONE])
def test_fault_halts_within_bound_for_its_reason_without_limit_violations_or_crashes(fault, tmp_path, domain):
    """Each fault halts the arm within its bound and the halt names the mechanism meant to catch it. Where another
    watchdog could halt about as soon, the case raises that one's timeout (Fault.executor), so a broken detection
    path fails here: no rerun."""
    check(fault, run_fault(fault, domain=domain, log_dir=tmp_path))


def test_refused_chunks_halt_within_bound_for_their_reason(tmp_path, domain):
    """The refused-chunk faults one after another on one bring-up (the arm moves again before each)."""
    for fault, row in zip(SHARED, run_faults(SHARED, domain=domain, log_dir=tmp_path)):
        check(fault, row)


def test_fault_bounds_are_below_the_fallbacks():
    """An isolated case's bound is below the timeout it raised and the chunk timeout the product runs with, so only
    the named mechanism can meet it."""
    for f in FAULTS:
        if f.executor:
            assert f.bound_s < min(f.executor["chunk_timeout_s"], LIMITS["chunk_timeout_s"] + 0.1), f.name


def test_refused_inputs_cause_no_command_and_say_why(tmp_path, domain):
    """Every bad chunk, sent with a goal active: no command moves the arm; every bad chunk and joint state gets the
    status that names it (that a refused joint state never keeps the arm going is the fault cases' 'sim stopped'
    test: it cannot move the arm by itself). The controls: a chunk asking twice the speed limit diagonally moves at
    exactly the limit (on the vector, applied before publishing), and a valid chunk moves the arm, so an executor
    that moved nothing at all would fail."""
    rows = {r["input"]: r for r in run_refusals(domain=domain, log_dir=tmp_path)}
    for kind, why in REFUSED_CHUNKS.items():
        row = rows[f"chunk: {kind}"]
        assert row["commands_moving"] == 0 and why in row["status"], row
    for kind, why in REFUSED_JOINT_STATES.items():
        row = rows[f"joint state: {kind}"]
        assert why in row["status"], row
    fast = rows["chunk: 2x the speed limit (control: moves at the limit)"]
    assert 0.98 * LIMITS["max_linear_speed"] <= fast["max_speed"] <= LIMITS["max_linear_speed"] * 1.001, fast
    assert rows["chunk: valid (control: must move)"]["commands_moving"] > 5, rows
    assert rows["(no node crashed)"]["status"] == "ok", rows


def test_no_stale_success(tmp_path, domain):
    """After a touch succeeds the sim's check stays true: a goal about another cube must not succeed from it."""
    row = run_stale_success(domain=domain, log_dir=tmp_path)
    assert row["first_goal_succeeded"] and row["second_goal_running"], row
    assert row["stale_successes"] == 0, row
