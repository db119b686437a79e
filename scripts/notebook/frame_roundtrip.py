"""What one camera frame's DDS hop costs between two Python processes, with and without the nodes' malloc setting.

Usage: .venv/bin/python scripts/notebook/frame_roundtrip.py [--seconds 15]

A sender publishes sensor_msgs/Image frames at 30 Hz (pre-serialized, its stamp written in per frame); an echo
process takes each one as raw bytes (as the policy node does) and answers with a std_msgs/Header carrying the
frame's stamp; the sender times the round trip. Each row is a fresh pair of processes over the shipped Fast DDS
profile; only the echo differs: with glibc's default thresholds, or with `reuse_freed_memory()` (what every
molevla node runs at start, nodes/process.py). Rows alternate so that both settings see the same machine.
"""
from __future__ import annotations

import argparse
import multiprocessing
import time

import numpy as np

SIZES = {"640x480 rgb8": (480, 640), "64x48 rgb8": (48, 64)}


def echo(reuse: bool, stop) -> None:
    import rclpy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from molevla_ros.inputs.image_wire import read_image
    from molevla_ros.nodes.process import make_executor, reuse_freed_memory
    from molevla_ros.nodes.qos import SENSOR_QOS

    if reuse:
        assert reuse_freed_memory() is None
    rclpy.init()
    node = rclpy.create_node("frame_echo")
    pub = node.create_publisher(Header, "frame_echo", 10)

    def on_frame(data: bytes) -> None:
        frame = read_image(data)
        msg = Header()
        msg.stamp.sec, msg.stamp.nanosec = frame.sec, frame.nanosec
        pub.publish(msg)

    node.create_subscription(Image, "frame", on_frame, SENSOR_QOS, raw=True)
    executor = make_executor(events=True)
    executor.add_node(node)
    while not stop.is_set():
        executor.spin_once(timeout_sec=0.05)
    rclpy.try_shutdown()


def send(shape: tuple[int, int], seconds: float) -> list[float]:
    import rclpy
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from molevla_ros.inputs.image_wire import write_stamp
    from molevla_ros.nodes.messages import rgb_to_msg, stamp_s
    from molevla_ros.nodes.process import make_executor
    from molevla_ros.nodes.qos import SENSOR_QOS

    rclpy.init()
    node = rclpy.create_node("frame_sender")
    frame = bytearray(serialize_message(rgb_to_msg(np.zeros((*shape, 3), np.uint8), node.get_clock().now().to_msg(),
                                                   "camera")))
    pub = node.create_publisher(Image, "frame", SENSOR_QOS)
    trips: list[float] = []
    now = lambda: node.get_clock().now().nanoseconds * 1e-9  # noqa: E731
    node.create_subscription(Header, "frame_echo", lambda m: trips.append(now() - stamp_s(m.stamp)), 10)

    def publish() -> None:
        stamp = node.get_clock().now().to_msg()
        write_stamp(frame, stamp.sec, stamp.nanosec)
        pub.publish(bytes(frame))

    node.create_timer(1 / 30, publish)
    executor = make_executor(events=True)
    executor.add_node(node)
    end = time.monotonic() + 30
    while len(trips) < 10:  # discovery, then a few frames to warm up
        executor.spin_once(timeout_sec=0.01)
        if time.monotonic() > end:
            raise RuntimeError("no echo within 30 s")
    trips.clear()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)
    rclpy.try_shutdown()
    return trips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="measured seconds per row")
    args = ap.parse_args()
    from molevla_ros.bringup import use_local_domain

    use_local_domain(91)
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for size, shape in SIZES.items():
        for reuse in (False, True):
            stop = ctx.Event()
            peer = ctx.Process(target=echo, args=(reuse, stop))
            peer.start()
            with ctx.Pool(1) as pool:
                trips = np.array(pool.apply(send, (shape, args.seconds))) * 1e3
            stop.set()
            peer.join(10)
            rows.append((size, "reuse_freed_memory" if reuse else "glibc defaults", len(trips),
                         *np.percentile(trips, [50, 99]), trips.max()))
            print(f"{rows[-1][0]:<14} {rows[-1][1]:<19} done", flush=True)
    print(f"\n{'frame':<14} {'echo process':<19} {'frames':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for size, setting, n, p50, p99, mx in rows:
        print(f"{size:<14} {setting:<19} {n:>6} {p50:>7.2f} {p99:>7.2f} {mx:>7.2f}")


if __name__ == "__main__":
    main()
