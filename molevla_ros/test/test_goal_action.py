"""The molevla/language_goal action against a real instruction node process (molevla_interfaces built by setup)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.nodes.messages import chunk_to_msg
from molevla_ros.nodes.qos import CHUNK_PUB_QOS, LATCHED_QOS, RELIABLE_QOS
from molevla_ros.topics import TOPIC_POLICY_STATS
from molevla_ros.nodes.goal_action import load_action_type
from ros_harness import GoalClient

LanguageGoal = load_action_type()
pytestmark = pytest.mark.skipif(LanguageGoal is None, reason="molevla_interfaces not built (scripts/setup.sh does)")


def _chunk(probe) -> JointTrajectory:
    return chunk_to_msg(np.zeros((16, 7)), probe.get_clock().now().to_msg(), "panda_link0", 0.1)


def test_goal_action_feedback_and_success(ros):
    """A goal sent as an action becomes the goal (latched on molevla/goal), reports the policy's last step and the
    executor's condition as feedback, and succeeds on the detector's rising edge; a goal left alone fails on the
    goal timeout."""
    with ros(["instruction"], {"instruction": {"goal_timeout_s": 4.0}}) as probe:
        goals = probe.listen(String, "molevla/goal", LATCHED_QOS)
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        chunk_pub = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
        stats_pub = probe.create_publisher(DiagnosticStatus, TOPIC_POLICY_STATS, 5)
        diag_pub = probe.create_publisher(DiagnosticArray, "/diagnostics", 10)
        success = probe.create_publisher(Bool, "molevla/task_success", 10)
        client = GoalClient(probe)

        handle = client.send("  Touch the red cube. ")
        assert handle.accepted
        probe.wait_for(lambda: goals and goals[-1].data == "Touch the red cube.", what="the latched goal")
        stats = DiagnosticStatus(name="molevla/policy", values=[
            KeyValue(key="layers_kept", value="4"), KeyValue(key="layers_total", value="8"),
            KeyValue(key="latency_ms", value="12.5")])
        executor = DiagnosticArray(status=[DiagnosticStatus(name="molevla: executor", message="ok: executing chunks"),
                                           DiagnosticStatus(name="molevla: policy", message="ok: policy running")])
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            for pub, msg in ((chunk_pub, _chunk(probe)), (stats_pub, stats), (diag_pub, executor),
                             (success, Bool(data=False))):
                pub.publish(msg)
            probe.spin_for(0.1)
        running = [f for f in client.feedback if f.state == "running" and f.layers_kept == 4]
        assert running, [(f.state, f.layers_kept) for f in client.feedback]
        last = running[-1]
        assert (last.layers_total, last.step_latency_ms, last.executor) == (8, 12.5, "ok: executing chunks")
        assert 0.0 < last.elapsed_s < 4.0
        n = len(client.feedback)  # malformed stats (another publisher, a bug): feedback goes on, those fields -1
        stats_pub.publish(DiagnosticStatus(name="molevla/policy", values=[
            KeyValue(key="layers_kept", value=""), KeyValue(key="latency_ms", value="n/a")]))
        probe.spin_for(0.6)
        assert client.feedback[n:] and (client.feedback[-1].layers_kept, client.feedback[-1].layers_total,
                                        client.feedback[-1].step_latency_ms) == (-1, -1, -1.0)
        first = client.feedback[0]  # published on acceptance, before any policy step was reported
        assert (first.state, first.layers_kept, first.step_latency_ms) == ("accepted", -1, -1.0)

        success.publish(Bool(data=True))
        status, result = client.result(handle)
        assert status == GoalStatus.STATUS_SUCCEEDED
        assert (result.success, result.outcome) == (True, "succeeded") and 1.0 < result.elapsed_s < 4.0
        probe.wait_for(lambda: goals[-1].data == "", what="the goal cleared after success")

        handle = client.send("touch the blue cube")  # nothing reports success: the goal timeout ends it
        status, result = client.result(handle, timeout=10.0)
        assert status == GoalStatus.STATUS_ABORTED
        assert (result.success, result.outcome) == (False, "failed") and "timed out" in result.reason
        # The status topic and the action result are separate messages: either may arrive first.
        probe.wait_for(lambda: any(s.startswith("failed: 'touch the blue cube' timed out") for s in probe.statuses()),
                       what="the timed-out status")


def test_goal_action_cancel_replace_and_refusals(ros):
    """Cancel stops the arm (goal cleared); a newer goal from the topic replaces an action goal; a bad goal or a
    stop word is rejected, and the stop word still stops the arm."""
    with ros(["instruction"]) as probe:
        goals = probe.listen(String, "molevla/goal", LATCHED_QOS)
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        topic = probe.create_publisher(String, "molevla/instruction", RELIABLE_QOS)
        client = GoalClient(probe)

        first = client.send("pick up the red cube and put it in the tray")
        assert first.accepted
        probe.wait_for(lambda: goals and goals[-1].data.startswith("pick up the red cube"), what="the first goal")
        probe.spin_for(0.3)  # past the goal rate limit (5 goals/s)
        topic.publish(String(data="push the green cube to the red target"))
        status, result = client.result(first)
        assert status == GoalStatus.STATUS_ABORTED and result.outcome == "replaced"
        assert "push the green cube" in result.reason and not result.success
        # the goal topic and the action result are separate DDS streams: their arrival order is not guaranteed
        probe.wait_for(lambda: goals[-1].data == "push the green cube to the red target", what="the replacing goal")

        probe.spin_for(0.3)
        second = client.send("touch the yellow cube")
        assert second.accepted
        probe.wait_for(lambda: goals[-1].data == "touch the yellow cube", what="the second goal")
        cancel = second.cancel_goal_async()
        probe.wait_for(cancel.done, what="the cancel answer")
        status, result = client.result(second)
        assert status == GoalStatus.STATUS_CANCELED
        assert (result.success, result.outcome, result.reason) == (False, "stopped", "action goal canceled")
        probe.wait_for(lambda: goals[-1].data == "", what="the goal cleared by cancel")

        probe.spin_for(0.3)
        assert not client.send(" \n ").accepted
        assert not client.send("x" * 1000).accepted
        probe.wait_for(lambda: sum("(action)" in s for s in probe.statuses() if s.startswith("rejected")) >= 2,
                       what="two rejections on status")

        third = client.send("touch the red cube")
        probe.wait_for(lambda: goals[-1].data == "touch the red cube", what="the third goal")
        assert not client.send("Stop!").accepted
        status, result = client.result(third)
        assert status == GoalStatus.STATUS_ABORTED and result.outcome == "stopped"
        assert "operator stop (action)" in result.reason
        probe.wait_for(lambda: goals[-1].data == "", what="the goal cleared by the stop word")

        probe.spin_for(0.3)  # two requests at once: the goal rate limit counts the first from its acceptance
        burst = [client.client.send_goal_async(client.type.Goal(instruction="touch the red cube")) for _ in range(2)]
        probe.wait_for(lambda: all(f.done() for f in burst), what="both answers")
        assert sorted(f.result().accepted for f in burst) == [False, True]
        probe.wait_for(lambda: goals[-1].data == "touch the red cube", what="the accepted one runs")
        probe.wait_for(lambda: any("goals/s; action)" in s for s in probe.statuses()), what="the refusal's reason")
