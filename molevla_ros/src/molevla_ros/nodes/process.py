"""How a node process runs: its main loop, scheduler priority and memory allocator settings."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable

import rclpy
from rclpy.node import Node

from molevla_ros.nodes.params import ParameterError


def set_realtime_priority(priority: int) -> str | None:
    """Put every thread of this process on SCHED_FIFO at `priority` (0: leave them); returns why not, or None."""
    if priority <= 0:
        return None
    try:
        for tid in os.listdir("/proc/self/task"):
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as e:  # no permission, or not Linux
        return f"realtime_priority {priority} not applied ({e}); running on the normal scheduler"
    return None


# glibc malloc's defaults hand every block over 128 KiB (a camera frame, its resized copy) back to the kernel when
# freed, so each new frame's buffers are fresh pages the kernel must fault in and zero again: about 1.7 ms of a
# 640x480 rgb8 frame's 3.3 ms round trip between two processes (scripts/notebook/frame_roundtrip.py;
# docs/notebook.md 'Measured').
MALLOC_MMAP_THRESHOLD = 16 << 20  # blocks below this come from the heap, whose pages are reused (glibc max: 32 MiB)


MALLOC_TRIM_THRESHOLD = 64 << 20  # free memory kept at the heap's top before it is returned to the kernel


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (malloc.h)


def reuse_freed_memory() -> str | None:
    """Keep freed camera-sized buffers in this process's heap for the next frame (glibc mallopt; a few MiB more
    resident memory). Returns why not (another C library), or None."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD,
                                                                                   MALLOC_TRIM_THRESHOLD)
    except (OSError, AttributeError) as e:
        return f"malloc thresholds not set ({e})"
    return None if ok else "malloc thresholds not set (mallopt refused them)"


def spin_until(node: Node, seconds: float, until: Callable[[], bool] | None = None, period: float = 0.01) -> bool:
    """Spin `node` for up to `seconds`. With `until`: True as soon as it holds, False on timeout."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=period)
        if until is not None and until():
            return True
    return until is None


def make_executor(events: bool):
    """rclpy's EventsExecutor (C++, no wait set rebuilt in Python per callback: about 0.5 ms less per image on the
    loop benchmark) where asked for and available (rclpy >= 7.1.4 on Jazzy), else the SingleThreadedExecutor."""
    from rclpy.executors import SingleThreadedExecutor

    if events:
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            return SingleThreadedExecutor()
        return EventsExecutor()
    return SingleThreadedExecutor()


def run(node_factory: Callable[[], Node], args: list[str] | None = None, events: bool = False) -> None:
    """Standard main: init, spin until Ctrl-C/SIGTERM, clean shutdown. `events`: spin on the EventsExecutor
    (make_executor; nodes without actions).

    A callback that raises is logged and the node keeps running: a bug in one message's handling
    must not take a node (and the arm's watchdogs) down.
    """
    import gc
    import signal
    import traceback

    from rclpy.executors import ExternalShutdownException

    malloc_problem = reuse_freed_memory()  # before rclpy and DDS allocate their buffers
    rclpy.init(args=args if args is not None else sys.argv)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    try:
        node = node_factory()
    except ParameterError as e:  # a configuration error: say which parameter, never run with it
        from rclpy.logging import get_logger

        get_logger("molevla").fatal(str(e))
        rclpy.try_shutdown()
        sys.exit(2)
    executor = make_executor(events)
    executor.add_node(node)
    priority = getattr(getattr(node, "p", None), "realtime_priority", 0)
    problem = set_realtime_priority(priority)
    for p in (malloc_problem, problem):
        if p:
            node.get_logger().warn(p)
    if priority and not problem:
        node.get_logger().info(f"all threads on SCHED_FIFO priority {priority}")
    # Everything built so far (modules, the model) lives as long as the node: moved out of the garbage collector's
    # reach, a full collection no longer walks it, so a callback is not held up by a long pause.
    gc.collect()
    gc.freeze()
    try:
        while rclpy.ok():  # spin_once, never EventsExecutor.spin(): that delivered no messages in a test here
            try:
                executor.spin_once(timeout_sec=0.5)
            except Exception:  # noqa: BLE001 - see docstring
                node.get_logger().error(f"callback failed, node continues:\n{traceback.format_exc()}")
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
