"""The executor's safety state (control/watchdog.py): stale inputs, policy liveliness, robot loss, the motion gate."""
import pytest

from molevla_ros.control.watchdog import MotionGate, Watchdog


def test_each_watched_input_halts_when_stale_and_names_itself():
    w = Watchdog({"camera": 0.35, "joint state": 0.2}, robot_lost_s=1.0)
    assert w.stale(0.0).startswith("camera stale"), "never seen counts as stale"
    w.seen("camera", 0.0)
    assert w.stale(0.1).startswith("joint state stale")
    w.seen("joint state", 0.1)
    assert w.stale(0.3) == "", "camera 0.3 s old (< 0.35), joint state 0.2 s old (= its limit): both fresh"
    assert w.stale(0.36).startswith("camera stale: none valid for 0.36 s (> 0.35 s)")
    w.seen("camera", 0.36)
    assert w.stale(0.36).startswith("joint state stale: none valid for 0.26 s (> 0.2 s)")


def test_an_unwatched_input_never_halts():
    w = Watchdog({"camera": 0.0, "joint state": 0.2}, robot_lost_s=1.0)
    w.seen("joint state", 0.0)
    assert w.stale(0.19) == "" and w.stale(1e6).startswith("joint state")


def test_robot_lost_only_after_it_was_seen_and_then_gone_for_robot_lost_s():
    w = Watchdog({"joint state": 0.2}, robot_lost_s=1.0)
    assert w.robot_lost(100.0) == "", "a robot never seen is not lost (it is stale)"
    w.seen("joint state", 5.0)
    assert w.robot_lost(6.0) == "" and "no valid joint state for 1.1 s" in w.robot_lost(6.1)
    w.seen("camera", 10.0)
    assert w.robot_lost(6.1), "another input is no sign of the robot"


def test_liveliness_halts_at_once_without_grace():
    w = Watchdog({}, 1.0, liveliness_grace_s=0.0)
    assert not w.liveliness_expired(0.0)
    w.liveliness_changed(-1, 1.0)
    assert w.liveliness_expired(1.0) and not w.liveliness_expired(1.0), "reported once"


def test_liveliness_grace_forgives_a_loss_regained_in_time_only():
    w = Watchdog({}, 1.0, liveliness_grace_s=0.05)
    w.liveliness_changed(-1, 1.0)
    assert not w.liveliness_expired(1.049)
    w.liveliness_changed(+1, 1.04)
    assert not w.liveliness_expired(2.0) and w.forgiven == 1
    w.liveliness_changed(-1, 3.0)
    assert not w.liveliness_expired(3.04) and w.liveliness_expired(3.0501)
    w.liveliness_changed(+1, 3.07)  # regained after the halt: nothing to forgive
    assert w.forgiven == 1
    w.liveliness_changed(0, 4.0)
    assert not w.liveliness_expired(9.0), "no change is no loss"


def test_gate_needs_a_goal_and_no_estop_and_no_hold():
    g = MotionGate()
    assert not g.open
    assert g.set_goal("touch the red cube") == "" and g.open
    g.set_estop(True)
    assert not g.open and g.hold == "e-stop was engaged"
    g.set_estop(False)
    assert not g.open, "releasing the e-stop never starts motion by itself"
    assert g.resume() == (True, "resumed 'touch the red cube' (was held: e-stop was engaged)") and g.open


def test_gate_hold_released_by_a_new_goal_or_resume_never_under_estop():
    g = MotionGate()
    g.set_goal("a")
    assert g.hold_until_resumed("robot lost") and not g.hold_until_resumed("again") and g.hold == "robot lost"
    assert g.set_goal("b") == "new goal 'b', hold released" and g.open
    g.hold_until_resumed("reflex")
    g.set_estop(True)
    assert g.set_goal("c") == "" and g.hold == "reflex" and not g.open
    assert g.resume() == (False, "e-stop is engaged: release it first")
    g.set_estop(False)
    assert g.resume()[0] and g.open
    g.set_goal("")
    assert not g.open and g.resume() == (False, "no goal to resume")


@pytest.mark.parametrize("goal", ["", "x"])
def test_gate_resume_without_hold(goal):
    g = MotionGate()
    g.set_goal(goal)
    assert g.resume() == ((True, "resumed 'x'") if goal else (False, "no goal to resume"))


@pytest.mark.parametrize("limit,seen", [(0.25, 1.0), (0.5, 3.0), (2.0, 10.0)])
def test_an_input_exactly_its_limit_old_is_fresh(limit, seen):
    """The halt comes only once an input is older than its limit (times chosen exact in binary floating point)."""
    w = Watchdog({"camera": limit}, robot_lost_s=1.0)
    w.seen("camera", seen)
    assert w.stale(seen + limit) == ""
    assert w.stale(seen + limit + 2.0 ** -40) == f"camera stale: none valid for {limit:.2f} s (> {limit} s)"


def test_the_reported_age_is_capped_at_99_s():
    w = Watchdog({"camera": 0.35, "joint state": 0.5}, robot_lost_s=1.0)
    assert w.stale(0.0) == "camera stale: none valid for 99.00 s (> 0.35 s)", "never seen"
    w.seen("camera", 0.0)
    assert w.stale(98.5) == "camera stale: none valid for 98.50 s (> 0.35 s)"
    assert w.stale(500.0) == "camera stale: none valid for 99.00 s (> 0.35 s)"


def test_liveliness_has_no_grace_by_default():
    w = Watchdog({}, 1.0)
    w.liveliness_changed(-1, 2.0)
    assert w.liveliness_expired(2.0)


def test_a_liveliness_event_without_change_neither_regains_nor_forgives():
    w = Watchdog({}, 1.0, liveliness_grace_s=0.25)
    w.liveliness_changed(-1, 1.0)
    w.liveliness_changed(0, 1.125)
    assert w.forgiven == 0 and w.liveliness_expired(1.25)


def test_every_forgiven_loss_is_counted():
    w = Watchdog({}, 1.0, liveliness_grace_s=0.25)
    for k, t in enumerate((1.0, 2.0, 3.0), 1):
        w.liveliness_changed(-1, t)
        w.liveliness_changed(+1, t + 0.125)
        assert w.forgiven == k and not w.liveliness_expired(t + 1.0)


def test_gate_state_is_reported_as_plain_strings_and_a_bool():
    """The executor publishes the gate's goal, e-stop (a bool) and hold ("" = not held) in its status."""
    g = MotionGate()
    assert (g.goal, g.estop, g.hold) == ("", False, "")
    g.set_goal("a")
    g.hold_until_resumed("robot lost")
    assert g.set_goal("b") == "new goal 'b', hold released" and g.hold == ""
    g.hold_until_resumed("reflex")
    assert g.resume() == (True, "resumed 'b' (was held: reflex)") and (g.goal, g.estop, g.hold) == ("b", False, "")
