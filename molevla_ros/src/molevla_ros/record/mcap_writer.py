"""Write ROS 2 messages to MCAP exactly as rosbag2 does (schema "ros2msg", CDR payloads).

The files open in `ros2 bag info/play`, Foxglove, and mcap-ros2-support's reader.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from mcap.writer import CompressionType, Writer
from rclpy.serialization import serialize_message

PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
              "int64", "uint64", "string", "wstring"}
SEPARATOR = "=" * 80


def _share_dirs() -> list[Path]:
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    return [Path(p) / "share" for p in prefixes]


def _msg_text(pkg: str, name: str) -> str:
    for share in _share_dirs():
        f = share / pkg / "msg" / f"{name}.msg"
        if f.is_file():
            return f.read_text()
    raise FileNotFoundError(f"no definition for {pkg}/msg/{name} under {[str(s) for s in _share_dirs()]}")


def _dependencies(pkg: str, text: str) -> list[str]:
    deps = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or "=" in line.split()[0] or len(line.split()) < 2:
            continue
        base = re.sub(r"\[.*\]$", "", line.split()[0])
        base = re.sub(r"<=\d+$", "", base)
        if base in PRIMITIVES or "=" in line.split()[1]:
            continue
        deps.append(base if "/" in base else f"{pkg}/{base}")
    return deps


def msg_definition(ros_type: str) -> str:
    """The ros2msg schema text: the type's .msg followed by every nested type (rosbag2's layout)."""
    pkg, _, name = ros_type.split("/")
    main = _msg_text(pkg, name)
    seen: list[str] = []
    todo = _dependencies(pkg, main)
    while todo:
        dep = todo.pop(0)
        if dep in seen:
            continue
        seen.append(dep)
        dpkg, dname = dep.split("/")[0], dep.split("/")[-1]
        todo += _dependencies(dpkg, _msg_text(dpkg, dname))
    parts = [main.rstrip("\n")]
    for dep in seen:
        dpkg, dname = dep.split("/")[0], dep.split("/")[-1]
        parts.append(f"{SEPARATOR}\nMSG: {dpkg}/{dname}\n{_msg_text(dpkg, dname).rstrip(chr(10))}")
    return "\n".join(parts) + "\n"


def ros_type_name(msg: Any) -> str:
    """'sensor_msgs/msg/Image' for a sensor_msgs.msg.Image instance."""
    module = type(msg).__module__.split(".")  # e.g. sensor_msgs.msg._image
    return f"{module[0]}/msg/{type(msg).__name__}"


class McapRos2Writer:
    """One MCAP file; channels and schemas are registered on first use of a topic."""

    def __init__(self, path: Path, metadata: dict[str, str] | None = None) -> None:
        self._file = open(path, "wb")
        self._writer = Writer(self._file, compression=CompressionType.LZ4)
        self._writer.start(profile="ros2", library="molevla_ros")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        if metadata:
            self._writer.add_metadata("molevla_episode", metadata)

    def write(self, topic: str, msg: Any, t_ns: int) -> None:
        type_name = ros_type_name(msg)
        if topic not in self._channels:
            if type_name not in self._schemas:
                self._schemas[type_name] = self._writer.register_schema(
                    type_name, "ros2msg", msg_definition(type_name).encode())
            self._channels[topic] = self._writer.register_channel(topic, "cdr", self._schemas[type_name])
        self._writer.add_message(self._channels[topic], log_time=t_ns, data=serialize_message(msg),
                                 publish_time=t_ns)

    def close(self, metadata: dict[str, str] | None = None) -> None:
        if metadata:
            self._writer.add_metadata("molevla_result", metadata)
        self._writer.finish()
        self._file.close()
