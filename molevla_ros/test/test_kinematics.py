"""Panda kinematics used by the joint-trajectory interface, checked against PyBullet's Panda model."""
import numpy as np
import pybullet as pb
import pybullet_data
import pytest

from molevla_ros.control import panda_kinematics as kin


@pytest.fixture(scope="module")
def panda():
    client = pb.connect(pb.DIRECT)
    pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
    robot = pb.loadURDF("franka_panda/panda.urdf", useFixedBase=True, physicsClientId=client)
    yield client, robot
    pb.disconnect(client)


def test_forward_kinematics_matches_pybullet_flange(panda):
    client, robot = panda
    rng = np.random.default_rng(0)
    for _ in range(10):
        q = rng.uniform(kin.Q_MIN, kin.Q_MAX)
        for i in range(7):
            pb.resetJointState(robot, i, q[i], physicsClientId=client)
        flange = pb.getLinkState(robot, 7, computeForwardKinematics=True, physicsClientId=client)  # panda_link8
        np.testing.assert_allclose(kin.forward(q, tcp=False)[:3, 3], flange[4], atol=1e-6)


def test_torch_fingertip_position_matches_numpy_forward_kinematics():
    """The model's in-graph FK (proprio features) equals the executor's numpy kinematics."""
    import torch

    from molevla_ros.model.proprio import fingertip_position

    q = np.random.default_rng(1).uniform(kin.Q_MIN, kin.Q_MAX, (8, 7))
    got = fingertip_position(torch.as_tensor(q)).numpy()
    np.testing.assert_allclose(got, np.stack([kin.forward(x)[:3, 3] for x in q]), atol=1e-9)


def test_jacobian_matches_finite_differences_and_ik_realises_the_twist():
    q = np.array([0.1, -0.4, 0.2, -2.1, 0.1, 1.9, 0.7])
    j = kin.jacobian(q)
    eps = 1e-6
    for k in range(7):
        dq = np.zeros(7)
        dq[k] = eps
        dp = (kin.forward(q + dq)[:3, 3] - kin.forward(q - dq)[:3, 3]) / (2 * eps)
        np.testing.assert_allclose(j[:3, k], dp, atol=1e-6)
    twist = np.array([0.05, -0.02, 0.03, 0.0, 0.0, 0.2])
    np.testing.assert_allclose(j @ kin.twist_to_joint_velocity(q, twist, damping=1e-4), twist, atol=1e-5)


def test_rotation_helpers():
    r = kin.rotvec_to_matrix(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(kin.matrix_to_quaternion(r), [0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)], atol=1e-12)
