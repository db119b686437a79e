"""A rosbag2 folder (metadata.yaml + MCAP or sqlite3 storage, as `ros2 bag record` writes it) of ROS 2 messages.

Messages are serialised by rclpy (the bytes a recorder receives); `rosbags` writes the storage and the metadata,
so no ROS install is needed.
"""
from __future__ import annotations

from pathlib import Path

from rclpy.serialization import serialize_message


def type_name(msg: object) -> str:
    """'sensor_msgs/msg/Image' for an rclpy sensor_msgs.msg.Image."""
    return f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"


class Rosbag2Writer:
    def __init__(self, path: Path, storage: str = "mcap") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.store = get_typestore(Stores.ROS2_JAZZY)
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        self.writer = Writer(path, version=9, storage_plugin=plugin)
        self.writer.open()
        self.connections: dict[str, object] = {}

    def write(self, topic: str, msg: object, t_ns: int, data: bytes | None = None) -> None:
        """`msg` on `topic` at log time `t_ns`; `data` replaces its serialised bytes (tests: corrupt messages)."""
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(topic, type_name(msg), typestore=self.store)
        self.writer.write(self.connections[topic], t_ns, serialize_message(msg) if data is None else data)

    def set_custom(self, key: str, value: str) -> None:
        """A key of the bag's metadata.yaml custom_data (`ros2 bag record --custom-data key=value` writes the same)."""
        self.writer.set_custom_data(key, value)

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> "Rosbag2Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
