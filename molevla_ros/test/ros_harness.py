"""Helpers for tests that run real nodes in their own processes and talk to them over real DDS."""
from __future__ import annotations

import time
from typing import Any, Callable

import rclpy
from rclpy.node import Node

from molevla_ros.bringup import Bringup, use_local_domain
from molevla_ros.nodes.process import spin_until


class Probe(Node):
    """The test's own node: publishers, subscribers that keep what arrives, and waiting helpers."""

    def __init__(self) -> None:
        super().__init__("test_probe")
        self.received: dict[str, list[Any]] = {}
        self.arrival: dict[str, list[float]] = {}

    def listen(self, msg_type: type, topic: str, qos: Any = 10, **kw: Any) -> list[Any]:
        box = self.received.setdefault(topic, [])
        times = self.arrival.setdefault(topic, [])

        def keep(m: Any) -> None:
            box.append(m)
            times.append(time.monotonic())

        self.create_subscription(msg_type, topic, keep, qos, **kw)
        return box

    def spin_for(self, seconds: float) -> None:
        spin_until(self, seconds, period=0.02)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
        if not (predicate() or spin_until(self, timeout, predicate, period=0.02)):
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def call(self, client: Any, request: Any, what: str, timeout: float = 10.0, resend_after: float = 2.0,
             feed: Callable[[], None] | None = None) -> Any:
        """A service's answer (`feed`, if given, runs every 50 ms while waiting). The request is sent again every
        `resend_after` s: a server that answers before it has matched the client's reply reader drops the answer
        (rmw_fastrtps waits 100 ms for that match, then gives up: ros2/rmw_fastrtps#467), which a loaded machine
        hits right after discovery."""
        self.wait_for(client.service_is_ready, timeout, f"the service for {what}")
        end, futures, sent = time.monotonic() + timeout, [], -resend_after
        while time.monotonic() < end:
            if time.monotonic() - sent >= resend_after:
                futures.append(client.call_async(request))
                sent = time.monotonic()
            if feed is not None:
                feed()
            spin_until(self, 0.05, period=0.02)
            done = [f for f in futures if f.done()]
            if done:
                return done[0].result()
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def statuses(self) -> list[str]:
        return [m.data for m in self.received.get("molevla/status", [])]


class RosTestSession:
    """Node processes + a probe on a private ROS domain; use as a context manager."""

    def __init__(self, nodes: list[str], domain: int, overrides: dict | None = None, log_dir=None) -> None:
        use_local_domain(domain)
        self.bringup = Bringup(nodes, overrides, log_dir=log_dir)

    def __enter__(self) -> Probe:
        self.bringup.start()
        rclpy.init()
        self.probe = Probe()
        return self.probe

    def __exit__(self, *exc: object) -> None:
        dead = self.bringup.dead()
        self.probe.destroy_node()
        rclpy.try_shutdown()
        self.bringup.stop()
        assert not dead, f"node processes died during the test: {dead}"


class GoalClient:
    """An action client on the test's probe node, with blocking helpers."""

    def __init__(self, probe: Probe) -> None:
        from rclpy.action import ActionClient

        from molevla_ros.nodes.goal_action import TOPIC_ACTION, load_action_type

        self.probe = probe
        self.type = load_action_type()
        self.client = ActionClient(probe, self.type, TOPIC_ACTION)
        probe.wait_for(lambda: self.client.server_is_ready(), what="the action server")
        self.feedback: list = []

    def send(self, text: str):
        future = self.client.send_goal_async(self.type.Goal(instruction=text),
                                             feedback_callback=lambda m: self.feedback.append(m.feedback))
        self.probe.wait_for(future.done, what=f"the answer to goal '{text}'")
        return future.result()

    def result(self, handle, timeout: float = 15.0):
        future = handle.get_result_async()
        self.probe.wait_for(future.done, timeout=timeout, what="the goal's result")
        return future.result().status, future.result().result
