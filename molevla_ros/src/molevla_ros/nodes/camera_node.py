"""camera: sensor_msgs/Image in any common encoding (or CompressedImage, jpeg/png) -> validated, resized RGB frame
with its capture stamp."""
from __future__ import annotations

import time

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

from molevla_ros.inputs.image_wire import read_image
from molevla_ros.inputs.images import FILTERS, ImageError, check_frame_size, decode_compressed, resize
from molevla_ros.nodes.messages import msg_to_frame, rgb_to_msg
from molevla_ros.nodes.params import FRAME_SIZE_PARAMS, REALTIME_PRIORITY, Param, declare
from molevla_ros.nodes.process import run
from molevla_ros.nodes.qos import SENSOR_QOS
from molevla_ros.nodes.status import Status
from molevla_ros.topics import TOPIC_IMAGE, TOPIC_IMAGE_RAW

PARAMS = [
    Param("width", 224, "Output frame width in pixels (the policy's input size)."),
    Param("height", 224, "Output frame height in pixels."),
    Param("resize", "bilinear", "Resize filter (antialiased, as PIL's): the one the policy's model was made with (its "
          "config.json vision.resize; the launch sets it from the model).", choices=FILTERS),
    Param("stale_timeout_s", 0.5, "No input frame for this long reports the camera as stale."),
    Param("transport", "raw", "raw: sensor_msgs/Image on image_raw; compressed: sensor_msgs/CompressedImage (jpeg or "
          "png) on image_raw/compressed, as image_transport's compressed plugin publishes it.",
          choices=("raw", "compressed")),
    *FRAME_SIZE_PARAMS,
    REALTIME_PRIORITY,
]


class CameraNode(Node):
    def __init__(self) -> None:
        super().__init__("camera")
        self.p = declare(self, PARAMS)
        self.status = Status(self)
        import torch  # the resize runs on torch's uint8 kernel: one thread, a pool would only wait on the other nodes

        torch.set_num_threads(1)
        self.pub = self.create_publisher(Image, TOPIC_IMAGE, SENSOR_QOS)
        if self.p.transport == "compressed":
            topic = TOPIC_IMAGE_RAW + "/compressed"
            self.create_subscription(CompressedImage, topic, self.on_compressed, SENSOR_QOS)
        else:
            topic = TOPIC_IMAGE_RAW
            # raw=True: the frame's bytes, read in place (inputs/image_wire.py) instead of rclpy's conversion
            self.create_subscription(Image, topic, self.on_image, SENSOR_QOS, raw=True)
        self.last_frame = None  # monotonic time of the last good frame
        self.frames = self.rejected = 0
        self.what = ""  # the last frame's size and encoding, for the status
        self.status("waiting", f"no camera frame yet on {self.resolve_topic_name(topic)}")
        self.create_timer(0.1, self.check_stale)

    def on_image(self, data: bytes) -> None:
        def decode() -> tuple[np.ndarray, Time, str]:
            img = read_image(data)
            self.what = f"{img.width}x{img.height} {img.encoding}"
            self.check_size(img.width, img.height)
            frame = msg_to_frame(img, self.p.width, self.p.height, self.p.resize)
            return frame, Time(sec=img.sec, nanosec=img.nanosec), img.frame_id

        self.forward(decode)

    def on_compressed(self, msg: CompressedImage) -> None:
        def decode() -> tuple[np.ndarray, Time, str]:
            rgb = decode_compressed(msg.format, msg.data)
            self.what = f"{rgb.shape[1]}x{rgb.shape[0]} compressed {msg.format}"
            self.check_size(rgb.shape[1], rgb.shape[0])
            return resize(rgb, self.p.width, self.p.height, filter=self.p.resize), msg.header.stamp, msg.header.frame_id

        self.forward(decode)

    def check_size(self, width: int, height: int) -> None:
        """ImageError for a frame too small or too narrow for the output size (min_input_scale, max_aspect_change)."""
        check_frame_size(width, height, self.p.width, self.p.height, self.p.min_input_scale, self.p.max_aspect_change)

    def forward(self, decode) -> None:
        """Decode and resize (refusing bad frames with a status), publish with the input's stamp and frame."""
        try:
            out, stamp, frame_id = decode()
        except ImageError as e:
            self.rejected += 1
            self.status("rejected", f"camera frame: {e}", error=True, event=True)
            return
        self.pub.publish(rgb_to_msg(out, stamp, frame_id))
        self.frames += 1
        self.status.values.update(frames=self.frames, rejected=self.rejected)
        self.status("ok", f"camera frames arriving ({self.what})")  # once per change
        self.last_frame = time.monotonic()

    def check_stale(self) -> None:
        if self.last_frame is not None and time.monotonic() - self.last_frame > self.p.stale_timeout_s:
            self.status("halted", f"camera stale: no valid frame for {time.monotonic() - self.last_frame:.1f} s",
                        error=True)


def main(args: list[str] | None = None) -> None:
    run(CameraNode, args, events=True)


if __name__ == "__main__":
    main()
