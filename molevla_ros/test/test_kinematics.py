"""Panda kinematics used by the joint-trajectory interface, checked against PyBullet's Panda model."""
import os
import xml.etree.ElementTree as ET

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


URDF = os.path.join(pybullet_data.getDataPath(), "franka_panda/panda.urdf")
# joint positions that are not float64 (a float32 or half-precision policy's output, a torch tensor's numpy view)
LOW_PRECISION = (np.float32, np.float16)


def urdf_chain(q):
    """Base-frame poses of panda_link1 .. panda_link8 and panda_hand, composed in float64 with transforms3d from the
    joint origins (xyz, fixed-axis rpy) and axes of PyBullet's panda.urdf: an independent double-precision reference
    (PyBullet's getLinkState rounds to ~1e-7)."""
    joints = {j.find("child").get("link"): j for j in ET.parse(URDF).getroot().iter("joint")}
    names = [f"panda_link{i}" for i in range(1, 9)] + ["panda_hand"]
    t, poses = np.eye(4), {}
    for i, name in enumerate(names):
        j = joints[name]
        step = np.eye(4)
        step[:3, :3] = euler.euler2mat(*map(float, j.find("origin").get("rpy").split()), "sxyz")
        step[:3, 3] = [float(v) for v in j.find("origin").get("xyz").split()]
        if j.get("type") == "revolute":
            axis = [float(v) for v in j.find("axis").get("xyz").split()]
            step[:3, :3] = step[:3, :3] @ axangle.axangle2mat(axis, float(q[i]))
        t = t @ step
        poses[name] = t
    return poses


def tcp_pose(poses):
    """The hand TCP frame: panda_hand's axes, TCP_OFFSET along its z."""
    t = poses["panda_hand"].copy()
    t[:3, 3] += t[:3, 2] * kin.TCP_OFFSET
    return t


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
        np.testing.assert_allclose(rot.matrix_to_euler(r), euler.mat2euler(r, "sxyz"), atol=1e-9)
    for gimbal in ([0.3, np.pi / 2, -0.2], [0.3, -np.pi / 2, 0.7]):  # roll and yaw share an axis: the same matrix
        m = euler.euler2mat(*gimbal, "sxyz")
        np.testing.assert_allclose(rot.euler_to_matrix(rot.matrix_to_euler(m)), m, atol=1e-9)


@pytest.mark.parametrize("rpy", [(0.05, 0.0, 0.0), (0.5, -0.4, 0.45), (0.3, 0.3, -0.3), (0.0, 0.0, 1.2),
                                 (np.pi, 0.0, 0.0), (-np.pi, 0.0, 0.0), (0.0, np.pi, 0.0), (0.0, -np.pi, 0.0),
                                 (0.0, 0.0, np.pi), (0.0, 0.0, -np.pi), (np.pi, 0.0, np.pi / 2), (0.2, 0.0, np.pi)])
def test_euler_deltas_become_cogacts_axis_angle(rpy):
    """CogACT's deploy code turns a chunk's roll / pitch / yaw into axis-angle with transforms3d's euler2axangle
    (sxyz) before using it; so does euler_to_rotvec. At (0.5, -0.4, 0.45) the Euler numbers read as a rotation
    vector would be 10-30% off. Half turns keep the commanded direction (roll -pi turns the other way than +pi)."""
    axis, angle = euler.euler2axangle(*rpy, "sxyz")
    np.testing.assert_allclose(rot.euler_to_rotvec(np.array([rpy]))[0], np.asarray(axis) * angle, atol=1e-9)


@pytest.mark.parametrize("dtype", (np.float64, *LOW_PRECISION, list))
def test_forward_kinematics_matches_the_urdf_chain_in_double_precision(dtype):
    """Flange, hand TCP and every joint frame against the URDF composed in float64, for joint positions of any
    precision: a float32 / float16 reading is the pose of exactly those joint values, not one rounded in the trig."""
    for q in np.random.default_rng(4).uniform(Q_MIN, Q_MAX, (5, 7)):
        q = q.tolist() if dtype is list else q.astype(dtype)
        ref = urdf_chain(np.asarray(q, float))
        np.testing.assert_allclose(kin.forward(q, tcp=False), ref["panda_link8"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(kin.forward(q), tcp_pose(ref), rtol=0, atol=1e-10)
        fs = kin.frames(np.asarray(q, float))
        assert len(fs) == 8
        for i in range(7):  # joint i+1's frame: its rotation axis is the z axis
            np.testing.assert_allclose(fs[i], ref[f"panda_link{i + 1}"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(fs[7], tcp_pose(ref), rtol=0, atol=1e-10)  # by default the end frame is the TCP
        np.testing.assert_allclose(kin.frames(np.asarray(q, float), tcp=False)[7], ref["panda_link8"], atol=1e-10)


def pybullet_jacobian(panda, q, tcp):
    """PyBullet's 6x7 geometric Jacobian (linear; angular) of the hand TCP (panda_hand + TCP_OFFSET along z) or of
    the flange (panda_link8's origin), at float64 joint positions (fingers at 0)."""
    client, robot = panda
    q = [float(x) for x in q]
    for i in range(7):
        pb.resetJointState(robot, i, q[i], physicsClientId=client)
    link, local = (8, [0.0, 0.0, kin.TCP_OFFSET]) if tcp else (7, [0.0, 0.0, 0.0])
    lin, ang = pb.calculateJacobian(robot, link, local, q + [0.0, 0.0], [0.0] * 9, [0.0] * 9, physicsClientId=client)
    return np.vstack([np.array(lin)[:, :7], np.array(ang)[:, :7]])


@pytest.mark.parametrize("tcp", [True, False])
@pytest.mark.parametrize("dtype", (np.float64, *LOW_PRECISION))
def test_jacobian_matches_pybullet(panda, tcp, dtype):
    """Exactly 7 columns (one per arm joint), for the TCP and the flange, and for joint positions of any precision."""
    for q in np.random.default_rng(5).uniform(Q_MIN, Q_MAX, (5, 7)).astype(dtype):
        j = kin.jacobian(q, tcp=tcp)
        assert j.shape == (6, 7)
        np.testing.assert_allclose(j, pybullet_jacobian(panda, q, tcp), rtol=0, atol=1e-10)


# a bent, well-conditioned pose; the elbow almost straight (joint 4 at its limit); the wrist singular (joint 6 = 0:
# joints 5 and 7 nearly aligned); and a float32 reading of a pose
DLS_POSES = [[0.1, -0.4, 0.2, -2.1, 0.1, 1.9, 0.7], [0.0, 0.3, 0.0, -0.0698, 0.0, 0.5, 0.0],
             [0.2, -0.3, 0.1, -1.8, 0.4, 0.0, -0.3], np.float32([0.3, 0.2, -0.4, -1.5, 0.8, 1.2, -0.9])]


@pytest.mark.parametrize("damping", [None, 0.05, 0.2, 1e-3])
@pytest.mark.parametrize("q", DLS_POSES)
@pytest.mark.parametrize("twist_dtype", (np.float64, *LOW_PRECISION))
def test_damped_least_squares_is_the_regularised_optimum(panda, q, damping, twist_dtype):
    """The joint velocity minimises |J dq - v|^2 + damping^2 |dq|^2 (default damping 0.05), i.e. solves the normal
    equations (J^T J + damping^2 I) dq = J^T v with PyBullet's Jacobian; near a singularity it stays within the
    damped bound |dq| <= |v| / (2 damping). The twist may come in any float precision."""
    twist = np.array([0.05, -0.02, 0.03, 0.1, -0.2, 0.3]).astype(twist_dtype)
    lam = 0.05 if damping is None else damping
    dq = kin.twist_to_joint_velocity(q, twist) if damping is None else kin.twist_to_joint_velocity(q, twist, damping)
    j, v = pybullet_jacobian(panda, q, tcp=True), twist.astype(float)
    assert dq.shape == (7,)
    np.testing.assert_allclose((j.T @ j + lam ** 2 * np.eye(7)) @ dq, j.T @ v, rtol=0, atol=1e-9)
    assert np.linalg.norm(dq) <= np.linalg.norm(v) / (2 * lam) + 1e-9


@pytest.mark.parametrize("axis", [[1, 0, 0], [0, -1, 0], [0, 0, 1]])
@pytest.mark.parametrize("angle", [1e-12, 1e-9, 1e-6, 1e-3])
def test_small_rotation_vectors_are_not_rounded_away(axis, angle):
    """A rotation vector as small as 1e-12 rad still rotates: the matrix's skew part is sin(angle) [axis]x as in
    transforms3d, to 1e-6 of the angle (not the identity)."""
    r = rot.rotvec_to_matrix(np.array(axis, float) * angle)
    ref = axangle.axangle2mat(axis, angle)
    np.testing.assert_allclose(r - r.T, ref - ref.T, rtol=0, atol=1e-6 * angle)
    assert np.abs(r - r.T).max() > angle


@pytest.mark.parametrize("rpy", [np.zeros((0, 3)), [], np.zeros(0, np.float32)])
def test_an_empty_chunk_of_euler_deltas_gives_no_rotations(rpy):
    out = rot.euler_to_rotvec(rpy)
    assert out.shape == (0, 3) and out.dtype == np.float64


@pytest.mark.parametrize("axis", [(1, -1, 0), (1, 1, 0), (0, 1, -1), (-1, 0, 1), (1, 0, 0), (0, 0, 1), (1, -2, 2)])
def test_exact_half_turns_keep_their_axis(axis):
    """A half turn's matrix 2 k k^T - I is symmetric, so the axis's signs live only in the off-diagonal products:
    the quaternion and rotation vector must still be that half turn (transforms3d's mat2quat up to sign)."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    m = 2.0 * np.outer(k, k) - np.eye(3)  # exact: no rounding asymmetry to lean on
    np.testing.assert_allclose(rot.rotvec_to_matrix(rot.matrix_to_rotvec(m)), m, atol=1e-12)
    w, x, y, z = quaternions.mat2quat(m)
    q = rot.matrix_to_quaternion(m)
    np.testing.assert_allclose(q * np.sign(q @ [x, y, z, w]), [x, y, z, w], atol=1e-12)
    assert np.linalg.norm(rot.matrix_to_rotvec(m)) == pytest.approx(np.pi)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_inputs_give_float64_rotations(dtype):
    """A rotation vector or matrix given in float16 / float32 is converted in float64: the matrix is orthonormal and
    the quaternion unit-length to float64 precision (not to the input's)."""
    r = np.array([0.3, -0.2, 0.5]).astype(dtype)
    m = rot.rotvec_to_matrix(r)
    np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(m, axangle.axangle2mat(r.astype(float), np.linalg.norm(r.astype(float))), atol=1e-14)
    q = rot.matrix_to_quaternion(m.astype(dtype))
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-14)
