"""The FR3 path against stand-ins that behave like franka_ros2 (Jazzy) and MoveIt 2.12 Servo (test/standins/):
real processes over real DDS, the real message types (moveit_msgs, franka_msgs built from their definitions), the
fr3 robot profile, and the Servo parameters exactly as launch/fr3.launch.py builds them (molevla_ros.fr3_stack)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from molevla_ros import fr3_stack
from molevla_ros.nodes.messages import chunk_to_msg, rgb_to_msg
from molevla_ros.nodes.qos import CHUNK_PUB_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, STATUS_QOS
from molevla_ros.robot_profile import load

STANDINS = Path(__file__).parent / "standins"
ROOT = Path(__file__).resolve().parents[1]
FR3 = load("fr3")
# franka_fr3_moveit_config/config/kinematics.yaml (franka_ros2 v3.x): the group's KDL solver
FRANKA_KINEMATICS = {"fr3_arm": {"kinematics_solver": "kdl_kinematics_plugin/KDLKinematicsPlugin",
                                 "kinematics_solver_search_resolution": 0.005, "kinematics_solver_timeout": 0.005}}


def franka_share(tmp_path: Path, version: str = "v3.4.0") -> callable:
    """share_of() for a franka_ros2 install of `version`: the files fr3_stack reads, laid out as that release
    installs them (v3.4.0 has franka_bringup/urdf/franka_arm.urdf.xacro; earlier releases do not)."""
    root = tmp_path / f"share_{version}"
    cfg = root / "franka_fr3_moveit_config" / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "kinematics.yaml").write_text(yaml.safe_dump(FRANKA_KINEMATICS))
    planners = {"RRTConnectkConfigDefault": {"type": "geometric::RRTConnect"}}
    (cfg / "ompl_planning.yaml").write_text(yaml.safe_dump({"planner_configs": planners}))
    arm = {"action_ns": "follow_joint_trajectory", "type": "FollowJointTrajectory", "default": True,
           "joints": list(FR3.arm_joints)}
    (cfg / "fr3_controllers.yaml").write_text(yaml.safe_dump({"controller_names": ["fr3_arm_controller"],
                                                             "fr3_arm_controller": arm}))
    (cfg / "fr3_joint_limits.yaml").write_text(yaml.safe_dump({"joint_limits": {
        j: {"has_acceleration_limits": True, "max_acceleration": 3.75} for j in FR3.arm_joints}}))
    (root / "franka_description" / "robots" / "fr3").mkdir(parents=True, exist_ok=True)
    for f in ("fr3.urdf.xacro", "fr3.srdf.xacro"):
        (root / "franka_description" / "robots" / "fr3" / f).write_text("<robot/>")
    if version >= "v3.4.0":
        (root / "franka_bringup" / "urdf").mkdir(parents=True, exist_ok=True)
        (root / "franka_bringup" / "urdf" / "franka_arm.urdf.xacro").write_text("<robot/>")
    shares = {"molevla_ros": ROOT}
    return lambda pkg: str(shares.get(pkg, root / pkg))


def test_the_arm_description_is_the_one_the_installed_franka_ros2_has(tmp_path):
    """franka_ros2 v3.4.0 moved the arm's URDF to franka_bringup; v3.0.0-v3.3.0 only have franka_description's."""
    new, args = fr3_stack.robot_xacro(franka_share(tmp_path, "v3.4.0"))
    assert new.endswith("franka_bringup/urdf/franka_arm.urdf.xacro") and "robot_type:=fr3" in args
    old, args = fr3_stack.robot_xacro(franka_share(tmp_path, "v3.3.0"))
    assert old.endswith("franka_description/robots/fr3/fr3.urdf.xacro") and "ros2_control:=true" in args
    assert Path(old).is_file() and Path(new).is_file()
    assert fr3_stack.semantic_xacro(franka_share(tmp_path))[0].endswith("franka_description/robots/fr3/fr3.srdf.xacro")


def test_servo_gets_its_ik_solver_under_robot_description_kinematics(tmp_path):
    """MoveIt reads robot_description_kinematics.<group>.kinematics_solver; franka's own moveit.launch.py wraps the
    file the same way."""
    params = fr3_stack.servo_parameters(franka_share(tmp_path), "<urdf/>", "<srdf/>")
    assert params[1] == {"robot_description_kinematics": FRANKA_KINEMATICS}
    assert params[2].endswith("config/fr3_servo.yaml") and Path(params[2]).is_file()


def test_moveit_py_gets_a_complete_configuration(tmp_path):
    """MoveItPy reads its whole configuration from its own parameters: robot model, kinematics, a named planning
    pipeline (an empty plan_request_params.planning_pipeline fails every plan) and the controllers."""
    cfg = fr3_stack.moveit_py_config(franka_share(tmp_path), "<urdf/>", "<srdf/>")
    assert cfg["robot_description"] == "<urdf/>" and cfg["robot_description_semantic"] == "<srdf/>"
    assert cfg["robot_description_kinematics"] == FRANKA_KINEMATICS
    assert cfg["plan_request_params"]["planning_pipeline"] in cfg["planning_pipelines"]["pipeline_names"]
    assert cfg["ompl"]["planning_plugins"] == ["ompl_interface/OMPLPlanner"]
    assert cfg["moveit_simple_controller_manager"]["fr3_arm_controller"]["joints"] == list(FR3.arm_joints)
    assert yaml.safe_load(yaml.safe_dump(cfg)) == cfg, "written to a params file by the launch"


def test_readme_real_fr3_steps_work_on_ubuntu_24_04():
    """Jazzy's platform is Ubuntu 24.04: pip refuses system installs (PEP 668) and franka_ros2 >= v3.3.0 depends
    on zed_wrapper, which rosdep has no key for."""
    text = (ROOT.parent / "docs" / "real_robot.md").read_text()
    assert "--skip-keys=zed_wrapper" in text
    assert "python3 -m venv --system-site-packages" in text and "COLCON_IGNORE" in text
    assert "use_fake_hardware" in text and "cannot move" in text


class Stack:
    """The FR3 stand-ins (franka.py: controller, robot state, recovery, gripper; servo.py: MoveIt Servo) as
    processes on the ROS domain set in this process's environment (create the test's session first), with logs in
    the test's folder."""

    def __init__(self, tmp_path: Path, servo_params: list, servo_delay: float = 3.0, **standin) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        files = []
        for i, p in enumerate(servo_params):  # the launch file's parameter list as params files
            if isinstance(p, dict):
                path = tmp_path / f"servo_params_{i}.yaml"
                path.write_text(yaml.safe_dump({"servo_node": {"ros__parameters": p}}))
                p = str(path)
            files += ["--params-file", p]
        extra = [a for k, v in standin.items() for a in ("-p", f"standin.{k}:={v}")]
        self.procs = [
            subprocess.Popen([sys.executable, str(STANDINS / "franka.py"), "--ros-args", *extra],
                             stdout=open(tmp_path / "franka_standin.log", "w"), stderr=subprocess.STDOUT, env=env),
            subprocess.Popen([sys.executable, str(STANDINS / "servo.py"), "--ros-args", *files,
                              "-p", f"standin.construct_delay_s:={servo_delay}"],
                             stdout=open(tmp_path / "servo_standin.log", "w"), stderr=subprocess.STDOUT, env=env)]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _fr3_stack(tmp_path: Path, servo_delay: float = 0.5, **standin) -> Stack:
    """The stand-ins with the Servo parameters fr3.launch.py gives (franka_ros2 v3.4.0 layout)."""
    return Stack(tmp_path, fr3_stack.servo_parameters(franka_share(tmp_path), "<urdf/>", "<srdf/>"), servo_delay,
                 **standin)


def _stats(probe, topic: str) -> dict[str, str]:
    msgs = probe.received.get(topic, [])
    return {kv.key: kv.value for kv in msgs[-1].values} if msgs else {}


def _world(probe):
    """A camera (the frames the policy and the executor watch) and the scripted expert's ground truth: the hand
    above and beside the red cube, so the expert's touch moves the arm with closed fingers."""
    from molevla_ros.testing.fake_robot import OBJECTS

    image_pub = probe.create_publisher(Image, "image_raw", SENSOR_QOS)
    state_pub = probe.create_publisher(MarkerArray, "sim/privileged_state", 5)
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)

    def publish():
        from visualization_msgs.msg import Marker

        stamp = probe.get_clock().now().to_msg()
        image_pub.publish(rgb_to_msg(rgb, stamp, "cam"))
        arr = MarkerArray()
        for name, pos in OBJECTS.items():
            m = Marker(ns=name)
            m.pose.position.x, m.pose.position.y, m.pose.position.z = pos
            arr.markers.append(m)
        state_pub.publish(arr)

    return publish


def _listen_all(probe):
    # latched as the nodes publish it: a status sent before this reader matched still arrives (a volatile reader
    # would miss it, and the executor sends each condition once)
    probe.listen(String, "molevla/status", STATUS_QOS)
    probe.listen(DiagnosticStatus, "molevla/policy_stats", 50)
    joints = probe.listen(JointState, "joint_states", 10)
    fingers = probe.listen(JointState, "franka_gripper/joint_states", 10)
    twists = probe.listen(TwistStamped, "servo_node/delta_twist_cmds", 100)
    for topic in ("servo_node/standin_stats", "fr3_arm_controller/standin_stats", "franka_gripper/standin_stats"):
        probe.listen(DiagnosticStatus, topic, 10)
    return joints, fingers, twists


FR3_EXECUTOR = {"robot": "fr3", "image_source": "raw", "dry_run": False}
FR3_POLICY = {"robot": "fr3", "image_source": "raw", "backend": "scripted_expert", "control_hz": 5.0}


def _chunks_under_a_goal(probe, joints):
    """A chunk publisher the executor hears, with a goal set (chunks act only under one), once joint states come."""
    chunks = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
    probe.create_publisher(String, "molevla/goal", LATCHED_QOS).publish(String(data="touch the red cube"))
    probe.wait_for(lambda: joints and chunks.get_subscription_count() > 0, 30, "up")
    return chunks


def _spin_feeding(probe, feed, seconds, until=None):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        feed()
        probe.spin_for(0.05)
        if until is not None and until():
            return True
    return until is None


def test_fr3_language_goal_moves_the_arm_through_servo_closes_the_gripper_and_recovers_from_a_reflex(ros, tmp_path):
    """The FR3 profile end to end: a language goal -> chunks -> twists the Servo stand-in accepts (after switching it
    to twist mode: its service appears 3 s after start, later than one 2 s wait) -> joint motion inside the FR3
    limits; the fingers close through franka_gripper's grasp action after homing; a reflex halts the arm within
    100 ms, recovery runs only when asked for, and motion resumes only on molevla/resume."""
    session = ros(["instruction", "policy", "executor"], {"policy": FR3_POLICY, "executor": FR3_EXECUTOR})
    stack = _fr3_stack(tmp_path, 3.0, object_width=0.03)  # on the session's ROS domain
    try:
        with session as probe:
            joints, fingers, twists = _listen_all(probe)
            feed = _world(probe)
            goal = probe.create_publisher(String, "molevla/instruction", RELIABLE_QOS)
            probe.wait_for(lambda: goal.get_subscription_count() > 0 and joints, 30, "nodes and stand-ins up")
            assert _spin_feeding(probe, feed, 20, lambda: _stats(probe, "franka_gripper/standin_stats").get(
                "homing") == "1"), "the executor homes the gripper once at start"
            assert _spin_feeding(probe, feed, 10, lambda: fingers and fingers[-1].position[0] > 0.0399), \
                "homing opens the fingers to 0.08 m"
            q0 = np.array(joints[-1].position[:7])
            goal.publish(String(data="touch the red cube"))
            moved = lambda: np.abs(np.array(joints[-1].position[:7]) - q0).max() > 0.02  # noqa: E731
            assert _spin_feeding(probe, feed, 30, moved), (probe.statuses()[-5:],
                                                           _stats(probe, "servo_node/standin_stats"))
            assert _spin_feeding(probe, feed, 10, lambda: int(_stats(probe, "servo_node/standin_stats").get(
                "published", 0)) > 10), _stats(probe, "servo_node/standin_stats")  # (stats come once a second)
            servo = _stats(probe, "servo_node/standin_stats")
            assert servo["invalid"] == "0" and servo["rescaled"] == "0", servo
            stats = probe.received["molevla/policy_stats"]
            first = {kv.key: kv.value for kv in stats[0].values}
            assert first["fingers_m"] == "0.0400 0.0400", "the policy reads the homed fingers from franka_gripper, " \
                f"not the zeros of joint_states: {first['fingers_m']}"
            assert _spin_feeding(probe, feed, 10, lambda: fingers and fingers[-1].position[0] < 0.02), \
                "the fingers close on the object through the grasp action"
            assert _spin_feeding(probe, feed, 10, lambda: int(_stats(probe, "franka_gripper/standin_stats").get(
                "grasp", 0)) >= 1), _stats(probe, "franka_gripper/standin_stats")  # (stats come once a second)
            q = np.array([m.position[:7] for m in joints])
            assert np.all(q >= np.array(FR3.joint_lower)) and np.all(q <= np.array(FR3.joint_upper))

            # A reflex (a collision, as libfranka reports it): the executor halts and holds.
            from franka_msgs.msg import FrankaRobotState

            states = probe.listen(FrankaRobotState, "franka_robot_state_broadcaster/robot_state", 100)
            reflex = probe.create_client(Trigger, "fr3_arm_controller/trigger_reflex")
            probe.wait_for(reflex.service_is_ready, 10, "the stand-in's reflex trigger")
            _spin_feeding(probe, feed, 0.5)
            reflex.call_async(Trigger.Request())
            assert _spin_feeding(probe, feed, 10, lambda: any("REFLEX" in s for s in probe.statuses()))
            # timed from the robot's first state in REFLEX (what the executor can know) to its first zero command
            first = next(m.header.stamp for m in states if m.robot_mode == FrankaRobotState.ROBOT_MODE_REFLEX)
            t_reflex = first.sec + first.nanosec * 1e-9
            halt = next(m.header.stamp for m in twists if m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 >= t_reflex
                        and m.twist.linear.x == m.twist.linear.y == m.twist.linear.z == 0.0)
            assert halt.sec + halt.nanosec * 1e-9 - t_reflex < 0.1, "halted within 100 ms of the reflex"
            assert any(s.startswith("held: executor: the robot reports REFLEX") for s in probe.statuses())
            n = len(twists)
            _spin_feeding(probe, feed, 1.0)
            assert all(not any((m.twist.linear.x, m.twist.linear.y, m.twist.linear.z)) for m in twists[n:])
            recover = probe.create_client(Trigger, "molevla/recover")
            resume = probe.create_client(Trigger, "molevla/resume")
            probe.wait_for(lambda: recover.service_is_ready() and resume.service_is_ready(), 10, "services")
            answer = probe.call(recover, Trigger.Request(), "the recover answer", feed=feed)
            assert answer.success, answer.message
            assert _spin_feeding(probe, feed, 10, lambda: any("recovered" in s for s in probe.statuses()))
            n = len(twists)
            _spin_feeding(probe, feed, 1.0)
            assert all(not any((m.twist.linear.x, m.twist.linear.y, m.twist.linear.z)) for m in twists[n:]), \
                "recovery alone does not move the arm"
            answer = probe.call(resume, Trigger.Request(), "the resume answer", feed=feed)
            assert answer.success, answer.message
            assert _spin_feeding(probe, feed, 10, lambda: any(
                abs(m.twist.linear.x) + abs(m.twist.linear.y) + abs(m.twist.linear.z) > 0 for m in twists[-5:]))
    finally:
        stack.stop()


def _chunk(probe, lin=(0.01, 0.0, 0.0), ang=(0.0, 0.0, 0.0), grip=1.0, frame="fr3_link0"):
    a = np.zeros((16, 7))
    a[:, :3], a[:, 3:6], a[:, 6] = lin, ang, grip
    return chunk_to_msg(a, probe.get_clock().now().to_msg(), frame, 0.1)


def _log_tails(folder: Path, lines: int = 15) -> str:
    """The last lines of each process log of a test (for a failure message: what the nodes said themselves)."""
    return "\n".join(f"== {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-lines:])
                     for f in sorted(folder.glob("*.log")))


def _executor_alone(ros, extra=None):
    """The executor with the FR3 profile fed chunks by the test (no policy), camera watch off."""
    return ros(["executor"], {"executor": {**FR3_EXECUTOR, "camera_timeout_s": 0.0, **(extra or {})}})


def test_servo_without_an_ik_solver_halts_the_executor_with_the_reason(ros, tmp_path):
    """kinematics.yaml given bare (keys fr3_arm.kinematics_solver): Servo answers every twist INVALID. The executor
    must halt and say so, not report 'executing chunks' while nothing moves."""
    bare = [{"robot_description": "<urdf/>"}, FRANKA_KINEMATICS, str(ROOT / "config" / "fr3_servo.yaml")]
    session = _executor_alone(ros)
    stack = Stack(tmp_path, bare, servo_delay=0.5)
    try:
        with session as probe:
            joints, _, _ = _listen_all(probe)
            chunks = _chunks_under_a_goal(probe, joints)
            q0 = np.array(joints[-1].position[:7])
            # Servo's process starts, builds (0.5 s) and is switched to twist mode before the first INVALID: up to
            # 30 s on a loaded CI machine (6 s was too short there); the wait ends at the first INVALID status.
            _spin_feeding(probe, lambda: chunks.publish(_chunk(probe)), 30,
                          lambda: any("INVALID" in s for s in probe.statuses()))
            assert any("MoveIt Servo reports INVALID" in s and "IK solver" in s for s in probe.statuses()), \
                (probe.statuses()[-5:], _log_tails(tmp_path))
            assert np.abs(np.array(joints[-1].position[:7]) - q0).max() < 1e-6
    finally:
        stack.stop()
    assert "No IK solver for planning group fr3_arm." in (tmp_path / "servo_standin.log").read_text()


def test_servo_switch_is_asked_again_when_its_answer_is_lost(domain):
    """A Servo whose first switch answer comes only after 3 s (lost, as far as the executor can tell: Fast DDS drops
    answers sent before the client's reply reader matched, ros2/rmw_fastrtps#467): the executor's Servo interface
    asks again after 2 s and is in twist mode once an answer comes, with no callback raising on the way."""
    import rclpy
    from moveit_msgs.srv import ServoCommandType
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    from molevla_ros.bringup import use_local_domain
    from molevla_ros.nodes.robot_interfaces import ServoInterface

    use_local_domain(domain)
    rclpy.init()
    try:
        profile = load("fr3")
        executor_node, servo_node = Node("executor"), Node("servo_node")
        calls = []

        def answer(req, resp):
            calls.append(time.monotonic())
            if len(calls) == 1:
                time.sleep(3.0)  # the first answer arrives after the executor has given up on it
            resp.success = req.command_type == ServoCommandType.Request.TWIST
            return resp

        servo_node.create_service(ServoCommandType, f"{profile.servo.node}/switch_command_type", answer)
        servo = ServoInterface(executor_node, profile, lambda reason: None)
        spinner = MultiThreadedExecutor(num_threads=4)  # the slow answer blocks one thread, not the executor's timer
        for n in (executor_node, servo_node):
            spinner.add_node(n)
        end = time.monotonic() + 20
        while servo.waiting and time.monotonic() < end:
            spinner.spin_once(timeout_sec=0.1)  # a callback that raises raises here
        assert servo.waiting == "", servo.waiting
        assert len(calls) >= 2 and calls[1] - calls[0] >= 1.9, calls  # asked again, 2 s after the first
        spinner.shutdown()
    finally:
        rclpy.try_shutdown()


def test_servo_config_keys_are_all_ones_jazzy_declares(tmp_path, domain):
    """The Servo stand-in refuses parameter names Jazzy's Servo does not declare (the real one ignores them without
    a word): config/fr3_servo.yaml starts it; a dead key (planning_frame, removed in MoveIt 2.8) does not."""
    from molevla_ros.bringup import use_local_domain

    use_local_domain(domain)
    good = franka_share(tmp_path)
    dead = tmp_path / "dead.yaml"
    dead.write_text(yaml.safe_dump({"servo_node": {"ros__parameters": {"moveit_servo": {"planning_frame": "x"}}}}))
    for params, code in ((fr3_stack.servo_parameters(good, "<urdf/>", "<srdf/>"), None),
                         (fr3_stack.servo_parameters(good, "<urdf/>", "<srdf/>") + [str(dead)], 3)):
        stack = Stack(tmp_path, params, servo_delay=0.2)
        time.sleep(4.0)
        servo = stack.procs[1]
        assert servo.poll() == code, (tmp_path / "servo_standin.log").read_text()[-2000:]
        stack.stop()


def test_executor_limits_stay_within_servo_scales_and_joint_commands_within_fr3_limits(ros, tmp_path):
    """Asked for 2 rad/s of rotation, the executor sends at most the profile's 0.8 rad/s, so Servo (scale.rotational
    0.8, speed_units) never shrinks a twist behind its back."""
    session = _executor_alone(ros)
    stack = _fr3_stack(tmp_path)
    try:
        with session as probe:
            joints, _, twists = _listen_all(probe)
            chunks = _chunks_under_a_goal(probe, joints)
            _spin_feeding(probe, lambda: chunks.publish(_chunk(probe, lin=(0.0, 0.0, 0.0), ang=(0.0, 0.0, 0.2))), 4)
            probe.spin_for(1.2)
            top = max(abs(m.twist.angular.z) for m in twists)
            assert top == pytest.approx(FR3.limits.max_angular_speed, abs=1e-6), top
            probe.wait_for(lambda: int(_stats(probe, "servo_node/standin_stats").get("published", 0)) > 10, 5,
                           "Servo's stats after the motion")
            servo = _stats(probe, "servo_node/standin_stats")
            assert servo["rescaled"] == "0" and servo["invalid"] == "0", servo
    finally:
        stack.stop()


def test_joint_trajectory_interface_keeps_fr3_joint_limits(ros, tmp_path):
    """interface joint_trajectory with the FR3 profile: with joint 6 near its FR3 lower limit (0.5445 rad; the
    Panda's is -0.0175) a motion that turns it down stops inside the limit less the margin; the controller stand-in
    (a libfranka reflex on any target outside the limits) stays out of REFLEX."""
    from molevla_ros import franka_kinematics as kin

    start = [0.0, -0.35, 0.0, -2.3, 0.0, 0.75, 0.785]  # the training pose with the hand tilted (joint 6 at 0.75)
    tilt = -kin.jacobian(np.array(start))[:, 5] * 0.3 * 0.1  # per 0.1 s step: the twist of joint 6 at -0.3 rad/s
    session = _executor_alone(ros, {"interface": "joint_trajectory"})
    stack = _fr3_stack(tmp_path, start_pose=str(start))
    try:
        with session as probe:
            joints, _, _ = _listen_all(probe)
            chunks = _chunks_under_a_goal(probe, joints)
            _spin_feeding(probe, lambda: chunks.publish(_chunk(probe, lin=tuple(tilt[:3]), ang=tuple(tilt[3:]))), 6)
            q6 = np.array([m.position[5] for m in joints])
            limit = FR3.joint_lower[5] + FR3.joint_limit_margin
            assert limit - 1e-6 <= q6.min() < limit + 0.02, (q6.min(), limit)
            ctrl = _stats(probe, "fr3_arm_controller/standin_stats")
            assert ctrl["mode"] != "4" and int(ctrl["accepted"]) > 10 and ctrl["refused"] == "0", ctrl
    finally:
        stack.stop()


def test_go_to_start_moves_the_arm_to_the_profiles_start_pose_and_holds(ros, tmp_path):
    """molevla/go_to_start: no twists while it runs (Servo stops writing to the controller), one trajectory to the
    profile's start pose through fr3_arm_controller, the hand opened, then the arm holds there until a goal or
    resume. Refused while the e-stop is engaged."""
    from std_msgs.msg import Bool

    away = [0.3, -0.6, 0.2, -2.0, 0.1, 1.7, 0.5]
    session = _executor_alone(ros)
    stack = _fr3_stack(tmp_path, start_pose=str(away))
    try:
        with session as probe:
            joints, fingers, twists = _listen_all(probe)
            estop = probe.create_publisher(Bool, "molevla/estop", LATCHED_QOS)
            go = probe.create_client(Trigger, "molevla/go_to_start")
            probe.wait_for(lambda: joints and go.service_is_ready(), 30, "up")
            estop.publish(Bool(data=True))
            probe.wait_for(lambda: any(s.startswith("stopped: e-stop") for s in probe.statuses()), 10, "e-stop")
            answer = probe.call(go, Trigger.Request(), "the go_to_start answer")
            assert not answer.success and "e-stop" in answer.message
            probe.wait_for(lambda: int(_stats(probe, "franka_gripper/standin_stats").get("stop", 0)) >= 1, 5,
                           "the e-stop stops the gripper")
            estop.publish(Bool(data=False))
            probe.spin_for(0.5)
            answer = probe.call(go, Trigger.Request(), "the go_to_start answer")
            assert answer.success, answer.message
            n = len(twists)
            target = np.array(FR3.start_pose)
            probe.wait_for(lambda: np.abs(np.array(joints[-1].position[:7]) - target).max() < 0.01, 30,
                           "the arm at the start pose")
            probe.wait_for(lambda: any("held: executor: at the start pose" in s for s in probe.statuses()), 10,
                           "held at the start pose")
            assert len(twists) == n, "no twist while moving to the start pose"
            probe.wait_for(lambda: int(_stats(probe, "franka_gripper/standin_stats").get("move", 0)) >= 1, 5,
                           "the hand opened (franka_gripper/move) for the models' start")
    finally:
        stack.stop()


def test_a_failed_grasp_is_reported(ros, tmp_path):
    """franka_gripper answers a grasp that fails (libfranka threw) with success false and the error: the executor
    says so on molevla/status."""
    session = _executor_alone(ros)
    stack = _fr3_stack(tmp_path, grasp_error="'command failed: fingers blocked'")
    try:
        with session as probe:
            joints, _, _ = _listen_all(probe)
            chunks = _chunks_under_a_goal(probe, joints)
            probe.wait_for(lambda: int(_stats(probe, "franka_gripper/standin_stats").get("homing", 0)) >= 1, 20,
                           "homing")
            assert _spin_feeding(probe, lambda: chunks.publish(_chunk(probe, grip=0.0)), 10, lambda: any(
                "gripper grasp failed" in s for s in probe.statuses())), probe.statuses()[-5:]
            assert any("command failed: fingers blocked" in s for s in probe.statuses())
    finally:
        stack.stop()


def test_an_estop_before_the_gripper_appears_still_stops_it(ros, tmp_path):
    """An e-stop engaged while franka_gripper's stop service is not yet up is sent once the service appears."""
    from std_msgs.msg import Bool

    session = _executor_alone(ros)
    with session as probe:
        _listen_all(probe)
        probe.create_publisher(Bool, "molevla/estop", LATCHED_QOS).publish(Bool(data=True))
        probe.wait_for(lambda: any("stop service not available yet" in s for s in probe.statuses()), 15,
                       "the executor saying the stop waits for the service")
        stack = _fr3_stack(tmp_path)
        try:
            probe.wait_for(lambda: int(_stats(probe, "franka_gripper/standin_stats").get("stop", 0)) >= 1, 20,
                           "the stop reaching the gripper")
        finally:
            stack.stop()
