"""sim: the simulated Franka in real time. Same interface as the real stack: it renders `image_raw` (with
`camera_info`), publishes `joint_states`, and executes MoveIt Servo twists (servo_node/delta_twist_cmds) and gripper
commands. Also reports task success and, for the scripted expert only, ground-truth object poses.

TF (where tf2_msgs is installed: every ROS install; no PyPI wheel exists): /tf_static holds the camera's optical
frame in the robot's base frame, /tf each arm link in the base frame at the joint-state rate (the sim stands in for
robot_state_publisher). Names, frames and topics are the panda_sim robot profile's.

Success (molevla/task_success) is judged for the active goal (molevla/goal) only: True once the scene's success
check turns true after the goal was set, and only if the goal names this scene's task (its colours); a goal
about another cube, or a state left over from an earlier goal, reads False.
"""
from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import TransformStamped, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from molevla_ros.nodes.messages import rgb_to_msg
from molevla_ros.nodes.params import Param, declare
from molevla_ros.nodes.process import run
from molevla_ros.nodes.qos import LATCHED_QOS, SENSOR_QOS
from molevla_ros.nodes.status import Status
from molevla_ros.topics import TOPIC_GOAL, TOPIC_IMAGE_RAW, TOPIC_SIM_STATE, TOPIC_SIM_TASK, TOPIC_SUCCESS
from molevla_ros.sim.camera_model import intrinsics, optical_pose, quaternion_xyzw
from molevla_ros.sim.ground_truth import state_markers
from molevla_ros.sim.scene import BASE_FRAME, SIM_ROBOT, FrankaTableSim, SimConfig
from molevla_ros.model.language import FAMILIES
from molevla_ros.sim.tasks import is_goal_of, sample_task

PARAMS = [
    Param("task_family", "pick_place", f"Scene and goal family: {', '.join(FAMILIES)}."),
    Param("seed", 0, "Layout seed; sim/reset moves on to the next seed."),
    Param("physics_hz", 240.0, "Physics steps per simulated second."),
    Param("camera_hz", 10.0, "Rendered camera frames per second on image_raw."),
    Param("joint_state_hz", 50.0, "joint_states messages per second."),
    Param("image_width", 320, "Rendered image width."),
    Param("image_height", 240, "Rendered image height."),
    Param("command_timeout_s", 0.2, "A twist older than this is treated as zero (as MoveIt Servo does)."),
    Param("camera_frame_id", "scene_camera", "frame_id of the rendered images and camera_info: the camera's optical "
          "frame (z forward, x right, y down), placed in the robot's base frame on /tf_static."),
]


def transform(stamp, parent: str, child: str, position, quat_xyzw) -> TransformStamped:
    t = TransformStamped()
    t.header.stamp, t.header.frame_id, t.child_frame_id = stamp, parent, child
    tr, r = t.transform.translation, t.transform.rotation
    tr.x, tr.y, tr.z = map(float, position)
    r.x, r.y, r.z, r.w = map(float, quat_xyzw)
    return t


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim")
        p = self.p = declare(self, PARAMS)
        self.sim = FrankaTableSim(SimConfig(physics_hz=p.physics_hz, image_width=p.image_width,
                                            image_height=p.image_height))
        self.image_pub = self.create_publisher(Image, TOPIC_IMAGE_RAW, SENSOR_QOS)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", SENSOR_QOS)
        self.camera_info = self.make_camera_info()
        self.joint_pub = self.create_publisher(JointState, SIM_ROBOT.joint_states, 10)
        self.success_pub = self.create_publisher(Bool, TOPIC_SUCCESS, 10)
        self.state_pub = self.create_publisher(MarkerArray, TOPIC_SIM_STATE, 5)
        self.task_pub = self.create_publisher(String, TOPIC_SIM_TASK, LATCHED_QOS)
        self.create_subscription(TwistStamped, SIM_ROBOT.twist_topic, self.on_twist, 10)  # as MoveIt Servo does
        self.create_subscription(Float64, SIM_ROBOT.gripper.topic, self.on_gripper, 10)
        self.create_subscription(String, TOPIC_GOAL, self.on_goal, LATCHED_QOS)
        self.create_service(Trigger, "sim/reset", self.on_reset)
        self.goal = ""
        self.success_armed = False  # the success check read False since the goal was set (or the scene reset)
        self.twist: tuple[float, np.ndarray, np.ndarray] | None = None
        self.seed = p.seed
        self.reset()
        self.create_timer(0.01, self.tick)
        self.diagnostics = Status(self, topic=False)  # the sim reports on its log and /diagnostics only
        self.tf_pub = self.start_tf()
        self.report()

    def make_camera_info(self) -> CameraInfo:
        cfg = self.sim.cfg
        k = intrinsics(cfg.image_width, cfg.image_height, cfg.camera_fov_deg)
        info = CameraInfo(width=cfg.image_width, height=cfg.image_height, distortion_model="plumb_bob",
                          d=[0.0] * 5, k=k.reshape(-1).tolist(), r=np.eye(3).reshape(-1).tolist(),
                          p=np.hstack([k, np.zeros((3, 1))]).reshape(-1).tolist())
        info.header.frame_id = self.p.camera_frame_id
        return info

    def start_tf(self):
        """The camera on /tf_static now; the arm's links go on /tf with each joint state. None without tf2_msgs."""
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.get_logger().warn("tf2_msgs is not installed (no PyPI wheel; every ROS install has it): no TF")
            return None
        cfg = self.sim.cfg
        position, rotation = optical_pose(cfg.camera_eye, cfg.camera_target)
        static = self.create_publisher(TFMessage, "/tf_static", LATCHED_QOS)
        static.publish(TFMessage(transforms=[transform(self.get_clock().now().to_msg(), BASE_FRAME,
                                                       self.p.camera_frame_id, position, quaternion_xyzw(rotation))]))
        self._tf_static = static  # kept alive: a latched publisher answers late subscribers
        self.tf_message = TFMessage
        return self.create_publisher(TFMessage, "/tf", 10)

    def report(self) -> None:
        self.diagnostics.values.update(task=self.sim.task.instruction, seed=self.seed)
        self.diagnostics("simulating", f"'{self.sim.task.instruction}' (family {self.p.task_family}, seed {self.seed})")

    def reset(self) -> None:
        self.sim.reset(sample_task(self.p.task_family, self.seed))
        self.t0 = time.monotonic()
        self.next_frame = self.next_joints = self.next_state = 0.0
        self.task_pub.publish(String(data=self.sim.task.instruction))
        self.success_armed = False

    def on_goal(self, msg: String) -> None:
        self.goal, self.success_armed = msg.data, False
        if self.goal and not is_goal_of(self.goal, self.sim.task):
            self.diagnostics("simulating", f"goal '{self.goal[:60]}' is not this scene's task "
                             f"('{self.sim.task.instruction}'): its success is not judged (reads False)")
        else:
            self.report()

    def goal_succeeded(self) -> bool:
        """The scene's check for the active goal, counted only after it read False under this goal."""
        if not self.goal or not is_goal_of(self.goal, self.sim.task):
            return False
        met = self.sim.success()
        self.success_armed = self.success_armed or not met
        return met and self.success_armed

    def on_reset(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        self.seed += 1
        self.reset()
        self.report()
        resp.success, resp.message = True, self.sim.task.instruction
        return resp

    def on_twist(self, msg: TwistStamped) -> None:
        lin = np.array([msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z])
        ang = np.array([msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z])
        if np.all(np.isfinite(lin)) and np.all(np.isfinite(ang)):
            self.twist = (time.monotonic(), lin, ang)
        else:
            self.twist = None
            self.diagnostics("rejected", "ignoring a twist with NaN/Inf", error=True, event=True)

    def on_gripper(self, msg: Float64) -> None:
        if np.isfinite(msg.data):
            self.sim.command_gripper(msg.data)

    def tick(self) -> None:
        now = time.monotonic()
        fresh = self.twist is not None and now - self.twist[0] < self.p.command_timeout_s
        if fresh:
            self.sim.command_twist(self.twist[1], self.twist[2])
        else:
            self.sim.command_twist(np.zeros(3), np.zeros(3))
        wall = now - self.t0
        if wall - self.sim.time > 0.1:  # fell behind (e.g. a slow render): drop the backlog, stay real time
            self.t0 = now - self.sim.time
            wall = self.sim.time
        while self.sim.time < wall:
            self.sim.step()
        stamp = self.get_clock().now().to_msg()
        if wall >= self.next_joints:
            self.next_joints = wall + 1.0 / self.p.joint_state_hz
            names, q, dq = self.sim.joint_state()
            msg = JointState(name=names, position=q.tolist(), velocity=dq.tolist())
            msg.header.stamp = stamp
            self.joint_pub.publish(msg)
            if self.tf_pub is not None:
                links = self.sim.link_poses().items()
                self.tf_pub.publish(self.tf_message(transforms=[transform(stamp, BASE_FRAME, name, pos, quat)
                                                                for name, (pos, quat) in links]))
        if wall >= self.next_state:
            self.next_state = wall + 0.1
            self.publish_state(stamp)
            self.success_pub.publish(Bool(data=self.goal_succeeded()))
        if wall >= self.next_frame:
            self.next_frame = wall + 1.0 / self.p.camera_hz
            self.image_pub.publish(rgb_to_msg(self.sim.render(), stamp, self.p.camera_frame_id))
            self.camera_info.header.stamp = stamp
            self.info_pub.publish(self.camera_info)

    def publish_state(self, stamp) -> None:
        self.state_pub.publish(state_markers(self.sim, stamp))


def main(args: list[str] | None = None) -> None:
    run(SimNode, args)


if __name__ == "__main__":
    main()
