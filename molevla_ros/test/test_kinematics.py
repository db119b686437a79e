"""Panda kinematics used by the joint-trajectory interface, checked against PyBullet's Panda model."""
import numpy as np
import pybullet as pb
import pybullet_data
import pytest
from transforms3d import axangles as axangle
from transforms3d import euler, quaternions

from molevla_ros import franka_kinematics as kin
from molevla_ros import rotations as rot
from molevla_ros.robot_profile import load

PANDA = load("panda_sim")
Q_MIN, Q_MAX = np.array(PANDA.joint_lower), np.array(PANDA.joint_upper)


@pytest.fixture(scope="module")
def panda():
    client = pb.connect(pb.DIRECT)
    pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
    robot = pb.loadURDF("franka_panda/panda.urdf", useFixedBase=True, physicsClientId=client)
    yield client, robot
    pb.disconnect(client)


def test_forward_kinematics_matches_pybullet_flange_and_hand(panda):
    """Position and orientation of the flange (panda_link8) and of the hand TCP frame (panda_hand's axes, 0.1034 m
    along its z) against PyBullet's Panda URDF."""
    client, robot = panda
    rng = np.random.default_rng(0)
    for _ in range(10):
        q = rng.uniform(Q_MIN, Q_MAX)
        for i in range(7):
            pb.resetJointState(robot, i, q[i], physicsClientId=client)
        for link, tcp in ((7, False), (8, True)):  # panda_link8, panda_hand
            state = pb.getLinkState(robot, link, computeForwardKinematics=True, physicsClientId=client)
            rot = np.array(pb.getMatrixFromQuaternion(state[5])).reshape(3, 3)
            pose = kin.forward(q, tcp=tcp)
            np.testing.assert_allclose(pose[:3, :3], rot, atol=1e-6)
            offset = rot @ [0, 0, kin.TCP_OFFSET] if tcp else 0.0
            np.testing.assert_allclose(pose[:3, 3], np.array(state[4]) + offset, atol=1e-6)


def test_torch_fingertip_position_matches_numpy_forward_kinematics():
    """The model's in-graph FK (proprio features) equals the executor's numpy kinematics."""
    import torch

    from molevla_ros.model.proprio import fingertip_position

    q = np.random.default_rng(1).uniform(Q_MIN, Q_MAX, (8, 7))
    got = fingertip_position(torch.as_tensor(q)).numpy()
    np.testing.assert_allclose(got, np.stack([kin.forward(x)[:3, 3] for x in q]), atol=1e-9)


def test_jacobian_matches_finite_differences_and_ik_realises_the_twist():
    q = np.array([0.1, -0.4, 0.2, -2.1, 0.1, 1.9, 0.7])
    j = kin.jacobian(q)
    eps = 1e-6
    for k in range(7):
        dq = np.zeros(7)
        dq[k] = eps
        plus, minus = kin.forward(q + dq), kin.forward(q - dq)
        np.testing.assert_allclose(j[:3, k], (plus[:3, 3] - minus[:3, 3]) / (2 * eps), atol=1e-6)
        # angular rows: the small rotation from q - dq to q + dq (R ~ I + [w]x, base frame) per 2 eps
        skew = plus[:3, :3] @ minus[:3, :3].T
        w = np.array([skew[2, 1] - skew[1, 2], skew[0, 2] - skew[2, 0], skew[1, 0] - skew[0, 1]]) / 2
        np.testing.assert_allclose(j[3:, k], w / (2 * eps), atol=1e-6)
    twist = np.array([0.05, -0.02, 0.03, 0.0, 0.0, 0.2])
    np.testing.assert_allclose(j @ kin.twist_to_joint_velocity(q, twist, damping=1e-4), twist, atol=1e-5)


def test_rotation_helpers_match_transforms3d():
    """Rotation vector -> matrix -> quaternion [x y z w] and -> rotation vector, and the chunks' Euler convention
    (static x-y-z), against transforms3d, over many rotations (angles up to pi)."""
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(rot.rotvec_to_matrix(np.zeros(3)), np.eye(3))
    for _ in range(200):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = rng.uniform(0.0, np.pi)
        r = rot.rotvec_to_matrix(axis * angle)
        np.testing.assert_allclose(r, axangle.axangle2mat(axis, angle), atol=1e-12)
        w, x, y, z = quaternions.mat2quat(r)
        q = rot.matrix_to_quaternion(r)
        np.testing.assert_allclose(q * np.sign(q @ [x, y, z, w]), [x, y, z, w], atol=1e-9)
        np.testing.assert_allclose(rot.rotvec_to_matrix(rot.matrix_to_rotvec(r)), r, atol=1e-9)
        rpy = rng.uniform([-np.pi, -np.pi / 2 + 1e-3, -np.pi], [np.pi, np.pi / 2 - 1e-3, np.pi])
        np.testing.assert_allclose(rot.euler_to_matrix(rpy), euler.euler2mat(*rpy, "sxyz"), atol=1e-12)


@pytest.mark.parametrize("rpy", [(0.05, 0.0, 0.0), (0.5, -0.4, 0.45), (0.3, 0.3, -0.3), (0.0, 0.0, 1.2)])
def test_euler_deltas_become_cogacts_axis_angle(rpy):
    """CogACT's deploy code turns a chunk's roll / pitch / yaw into axis-angle with transforms3d's euler2axangle
    (sxyz) before using it; so does euler_to_rotvec. At (0.5, -0.4, 0.45) the Euler numbers read as a rotation
    vector would be 10-30% off."""
    axis, angle = euler.euler2axangle(*rpy, "sxyz")
    np.testing.assert_allclose(rot.euler_to_rotvec(np.array([rpy]))[0], np.asarray(axis) * angle, atol=1e-9)
