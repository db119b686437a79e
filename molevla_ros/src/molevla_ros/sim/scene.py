"""A simulated Franka Panda on a table (PyBullet), driven like MoveIt Servo: by end-effector twists.

No ROS here: :mod:`molevla_ros.nodes.sim_node` wraps it in topics, and the collection/evaluation
tools step it directly, faster than real time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet as pb
import pybullet_data

from molevla_ros.robot_profile import load
from molevla_ros.sim.tasks import COLOURS, CUBE_SIZE, Task

ARM_JOINTS = list(range(7))
FINGER_JOINTS = (9, 10)
EE_LINK = 11  # panda_grasptarget: between the fingertips
SIM_ROBOT = load("panda_sim")  # the robot this simulator is: its joint names, frames and start pose
BASE_FRAME = SIM_ROBOT.base_frame  # the robot base sits at the world origin: world poses are base-frame poses
JOINT_NAMES = list(SIM_ROBOT.joints)  # arm then fingers, as PyBullet's franka_panda/panda.urdf names them
HOME = list(SIM_ROBOT.start_pose)
DOWN = pb.getQuaternionFromEuler([math.pi, 0.0, 0.0])  # gripper pointing at the table
TARGET_RADIUS = 0.045
CAMERA = "main"  # the scene camera's name in observations (the name models read by default)
TRAY_INNER = 0.14  # inner side of the square tray
PUSH_TOLERANCE = 0.045  # cube centre to target centre, metres
DISTURB_TOLERANCE = 0.03  # a cube the goal is not about must stay within this of where it started (m)
EE_LOW, EE_HIGH = np.array([0.25, -0.4, 0.005]), np.array([0.8, 0.4, 0.45])  # reachable box for the EE


@dataclass
class SimConfig:
    physics_hz: float = 240.0
    image_width: int = 320
    image_height: int = 240
    camera_eye: tuple[float, float, float] = (1.05, 0.0, 0.75)
    camera_target: tuple[float, float, float] = (0.42, 0.0, 0.0)
    camera_fov_deg: float = 50.0


class FrankaTableSim:
    """Panda + table + task objects. Commands: EE twist in the base frame and gripper opening."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.cfg = config or SimConfig()
        self.dt = 1.0 / self.cfg.physics_hz
        self.client = pb.connect(pb.DIRECT)
        self.time = 0.0
        self.task: Task | None = None
        self._objects: dict[str, int] = {}
        self._lin = np.zeros(3)
        self._ang = np.zeros(3)
        self._gripper_open = 1.0
        self._view = pb.computeViewMatrix(self.cfg.camera_eye, self.cfg.camera_target, [0, 0, 1])
        self._proj = pb.computeProjectionMatrixFOV(
            self.cfg.camera_fov_deg, self.cfg.image_width / self.cfg.image_height, 0.05, 3.0)

    # ---- episode set-up -------------------------------------------------------------------
    def reset(self, task: Task) -> None:
        c = self.client
        pb.resetSimulation(physicsClientId=c)
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        pb.setTimeStep(self.dt, physicsClientId=c)
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
        plane = pb.loadURDF("plane.urdf", physicsClientId=c)
        pb.changeVisualShape(plane, -1, rgbaColor=[0.78, 0.7, 0.58, 1], textureUniqueId=-1,
                           physicsClientId=c)
        self.robot = pb.loadURDF("franka_panda/panda.urdf", useFixedBase=True, physicsClientId=c)
        for j, q in zip(ARM_JOINTS, HOME):
            pb.resetJointState(self.robot, j, q, physicsClientId=c)
        for j in FINGER_JOINTS:
            pb.resetJointState(self.robot, j, 0.04, physicsClientId=c)
            pb.changeDynamics(self.robot, j, lateralFriction=1.5, physicsClientId=c)
        self._objects = {}
        self.task = task
        for colour, (x, y, yaw) in task.cubes.items():
            self._objects[f"{colour}_cube"] = self._box([CUBE_SIZE / 2] * 3, [x, y, CUBE_SIZE / 2],
                                                        COLOURS[colour], mass=0.08, yaw=yaw)
        for colour, (x, y) in task.targets.items():
            vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=TARGET_RADIUS, length=0.002,
                                       rgbaColor=COLOURS[colour], physicsClientId=c)
            self._objects[f"{colour}_target"] = pb.createMultiBody(0, -1, vis, [x, y, 0.001], physicsClientId=c)
        if task.tray is not None:
            self._objects["tray"] = self._tray(*task.tray)
        self.time = 0.0
        self._lin[:] = 0.0
        self._ang[:] = 0.0
        self._gripper_open = 1.0
        pos, _ = self.ee_pose()
        self._target_pos, self._target_orn = np.array(pos), np.array(DOWN)
        self._hold_joints()
        for _ in range(int(0.2 * self.cfg.physics_hz)):  # let objects settle
            self.step()
        self._start = {name: p for name, (p, _) in self.object_poses().items() if name.endswith("_cube")}

    def _box(self, half, pos, rgba, mass, yaw=0.0) -> int:
        c = self.client
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=c)
        body = pb.createMultiBody(mass, col, vis, pos, pb.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=c)
        pb.changeDynamics(body, -1, lateralFriction=1.0, physicsClientId=c)
        return body

    def _tray(self, x: float, y: float) -> int:
        c, s, h, t = self.client, TRAY_INNER / 2, 0.03, 0.006
        parts = [([s + t, s + t, t / 2], [0, 0, t / 2])]
        parts += [([t / 2, s + t, h / 2], [sx * (s + t / 2), 0, h / 2]) for sx in (-1, 1)]
        parts += [([s, t / 2, h / 2], [0, sy * (s + t / 2), h / 2]) for sy in (-1, 1)]
        half = [p[0] for p in parts]
        offs = [p[1] for p in parts]
        col = pb.createCollisionShapeArray([pb.GEOM_BOX] * 5, halfExtents=half, collisionFramePositions=offs,
                                           physicsClientId=c)
        vis = pb.createVisualShapeArray([pb.GEOM_BOX] * 5, halfExtents=half, visualFramePositions=offs,
                                        rgbaColors=[[0.45, 0.3, 0.2, 1]] * 5, physicsClientId=c)
        return pb.createMultiBody(0, col, vis, [x, y, 0], physicsClientId=c)

    # ---- commands ---------------------------------------------------------------------------
    def command_twist(self, linear: np.ndarray, angular: np.ndarray) -> None:
        """Set the EE velocity (m/s, rad/s, base frame), held until the next command."""
        self._lin = np.asarray(linear, float)
        self._ang = np.asarray(angular, float)

    def command_gripper(self, open_fraction: float) -> None:
        """1.0 = fully open (8 cm), 0.0 = closed."""
        self._gripper_open = float(np.clip(open_fraction, 0.0, 1.0))

    # ---- stepping ---------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one physics step, tracking the commanded twist with IK."""
        c = self.client
        pos, _ = self.ee_pose()
        self._target_pos = np.clip(self._target_pos + self._lin * self.dt, EE_LOW, EE_HIGH)
        lag = self._target_pos - np.array(pos)
        if np.linalg.norm(lag) > 0.03:  # blocked: do not wind up
            self._target_pos = np.array(pos) + lag * (0.03 / np.linalg.norm(lag))
        if np.any(self._ang):
            dq = pb.getQuaternionFromEuler(list(self._ang * self.dt))
            self._target_orn = np.array(pb.multiplyTransforms([0, 0, 0], dq, [0, 0, 0], self._target_orn)[1])
        self._hold_joints()
        pb.stepSimulation(physicsClientId=c)
        self.time += self.dt

    def _hold_joints(self) -> None:
        c = self.client
        q = pb.calculateInverseKinematics(self.robot, EE_LINK, self._target_pos.tolist(), self._target_orn.tolist(),
                                          lowerLimits=[-2.9, -1.8, -2.9, -3.0, -2.9, -0.08, -2.9],
                                          upperLimits=[2.9, 1.8, 2.9, -0.07, 2.9, 3.8, 2.9],
                                          jointRanges=[5.8, 3.6, 5.8, 2.9, 5.8, 3.9, 5.8], restPoses=HOME,
                                          maxNumIterations=30, physicsClientId=c)
        pb.setJointMotorControlArray(self.robot, ARM_JOINTS, pb.POSITION_CONTROL, targetPositions=q[:7],
                                     forces=[87.0] * 4 + [12.0] * 3, physicsClientId=c)
        w = 0.04 * self._gripper_open
        pb.setJointMotorControlArray(self.robot, list(FINGER_JOINTS), pb.POSITION_CONTROL, targetPositions=[w, w],
                                     forces=[70.0, 70.0], physicsClientId=c)

    def advance(self, seconds: float) -> None:
        for _ in range(max(1, int(round(seconds * self.cfg.physics_hz)))):
            self.step()

    # ---- observations -----------------------------------------------------------------------
    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        s = pb.getLinkState(self.robot, EE_LINK, computeForwardKinematics=True, physicsClientId=self.client)
        return np.array(s[4]), np.array(s[5])

    def gripper_width(self) -> float:
        return float(sum(pb.getJointState(self.robot, j, physicsClientId=self.client)[0] for j in FINGER_JOINTS))

    def joint_state(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        states = pb.getJointStates(self.robot, ARM_JOINTS + list(FINGER_JOINTS), physicsClientId=self.client)
        return JOINT_NAMES, np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def link_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every link after the base: name -> (position, quaternion xyzw) in the base frame."""
        out = {}
        for j in range(pb.getNumJoints(self.robot, physicsClientId=self.client)):
            name = pb.getJointInfo(self.robot, j, physicsClientId=self.client)[12].decode()
            s = pb.getLinkState(self.robot, j, computeForwardKinematics=True, physicsClientId=self.client)
            out[name] = (np.array(s[4]), np.array(s[5]))
        return out

    def object_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {name: tuple(map(np.array, pb.getBasePositionAndOrientation(b, physicsClientId=self.client)))
                for name, b in self._objects.items()}

    def render(self) -> np.ndarray:
        """The fixed scene camera as an (H, W, 3) uint8 RGB array."""
        w, h = self.cfg.image_width, self.cfg.image_height
        img = pb.getCameraImage(w, h, self._view, self._proj, shadow=0, renderer=pb.ER_TINY_RENDERER,
                                flags=pb.ER_NO_SEGMENTATION_MASK, physicsClientId=self.client)[2]
        return np.asarray(img, np.uint8).reshape(h, w, 4)[:, :, :3].copy()

    # ---- success ----------------------------------------------------------------------------
    def disturbed(self, name: str) -> bool:
        """True if a cube moved more than DISTURB_TOLERANCE (xy) from where the episode started."""
        pos = pb.getBasePositionAndOrientation(self._objects[name], physicsClientId=self.client)[0]
        return bool(np.linalg.norm(np.array(pos[:2]) - self._start[name][:2]) > DISTURB_TOLERANCE)

    def success(self) -> bool:
        """The goal is met and no other cube was knocked out of place (flailing never counts)."""
        t = self.task
        if t is None:
            return False
        c = self.client
        name = f"{t.cube}_cube"
        if any(self.disturbed(other) for other in self._start if other != name):
            return False
        cube = self._objects[name]
        pos = np.array(pb.getBasePositionAndOrientation(cube, physicsClientId=c)[0])
        if t.family == "touch":  # a touch, not a shove
            return len(pb.getContactPoints(self.robot, cube, physicsClientId=c)) > 0 and not self.disturbed(name)
        if t.family == "push":
            goal = np.array(t.targets[t.target])
            return bool(np.linalg.norm(pos[:2] - goal) < PUSH_TOLERANCE and pos[2] < CUBE_SIZE)
        if t.family == "pick_place":
            inside = np.all(np.abs(pos[:2] - np.array(t.tray)) < TRAY_INNER / 2)
            held = len(pb.getContactPoints(self.robot, cube, physicsClientId=c)) > 0
            return bool(inside and pos[2] < 0.06 and not held)
        return False

    def close(self) -> None:
        if pb.isConnected(self.client):
            pb.disconnect(self.client)
