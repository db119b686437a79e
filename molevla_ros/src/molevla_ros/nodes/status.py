"""Each node's state for the operator: molevla/status and /diagnostics."""
from __future__ import annotations

import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from std_msgs.msg import String

from molevla_ros.nodes.qos import STATUS_QOS
from molevla_ros.topics import TOPIC_DIAGNOSTICS, TOPIC_STATUS


class Status:
    """Publishes '<state>: <reason>' on molevla/status (latched, STATUS_QOS) and logs it; repeats are suppressed.

    Two kinds of report: a condition (the node's state until the next condition: running, halted, ...) and an
    event (`event=True`: one refused input). Events are counted, published at most `event_burst` times per
    `event_period_s` (the rest only counted) and leave the condition as it was. /diagnostics
    (diagnostic_msgs/DiagnosticArray, once per second, the standard aggregator topic) carries the condition's
    level (ERROR after an error condition, else OK), WARN for `event_period_s` x 3 after a refused input, and
    `values` (counters and numbers a node keeps there). The status topic carries changes only: its messages
    say nothing about which node sent them, so a periodic repeat there would read as a new transition (a
    repeated "succeeded" as a new success); the periodic copy of each node's state is its /diagnostics entry.
    `topic=False` reports on the log and /diagnostics only.
    """

    def __init__(self, node: Node, diagnostics_hz: float = 1.0, topic: bool = True,
                 event_period_s: float = 1.0, event_burst: int = 5) -> None:
        self._node = node
        self._pub = node.create_publisher(String, TOPIC_STATUS, STATUS_QOS) if topic else None
        self._diag_pub = node.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)
        self._last = ""  # the last message published (condition or event)
        self._condition = ""
        self._error = False
        self._event_period, self._event_burst = event_period_s, event_burst
        self._events: list[float] = []  # monotonic times of the event reports published in the last period
        self.values: dict[str, Any] = {}
        ns = node.get_namespace().rstrip("/")
        self._name = f"{ns}/{node.get_name()}".lstrip("/")
        node.create_timer(1.0 / diagnostics_hz, self.publish_diagnostics)

    def publish_diagnostics(self) -> None:
        recent_event = bool(self._events) and time.monotonic() - self._events[-1] < 3 * self._event_period
        level = (DiagnosticStatus.ERROR if self._error else DiagnosticStatus.WARN if recent_event
                 else DiagnosticStatus.OK)
        message = self._condition or "starting"
        if recent_event:
            message += f" (last refused input: {self.values.get('last_refused', '')})"
        values = [KeyValue(key=k, value=str(v)) for k, v in self.values.items()]
        st = DiagnosticStatus(level=level, name=f"molevla: {self._name}", hardware_id="molevla_ros",
                              message=message, values=values)
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self._node.get_clock().now().to_msg()
        self._diag_pub.publish(arr)

    def __call__(self, state: str, reason: str, *, error: bool = False, repeat: bool = False,
                 event: bool = False) -> None:
        text = f"{state}: {reason}"
        if event:
            self.values["refused_inputs"] = self.values.get("refused_inputs", 0) + 1
            self.values["last_refused"] = reason
            now = time.monotonic()
            recent = [t for t in self._events if now - t < self._event_period]
            if len(recent) >= self._event_burst:
                self._events = recent
                return  # counted only: a stream of bad messages must not flood the log and the status topic
            self._events = recent + [now]
        elif text == self._last and not repeat:
            return
        else:
            self._condition, self._error = text, error
        self._last = text
        if error:  # two call sites: rclpy refuses one call site logging at two severities
            self._node.get_logger().error(text)
        else:
            self._node.get_logger().info(text)
        if self._pub is not None:
            self._pub.publish(String(data=text))
