"""Real node processes over real DDS: each test starts the nodes it needs and probes their topics."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float64, String
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from molevla_ros.testing.fake_robot import fake_robot_msgs
from molevla_ros.sim.scene import SIM_ROBOT
from molevla_ros.nodes.messages import chunk_to_msg, rgb_to_msg, stamp_s, to_duration, to_stamp
from molevla_ros.nodes.qos import CHUNK_PUB_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, STATUS_QOS

GOAL = "touch the red cube"
EXPERT = {"backend": "scripted_expert", "control_hz": 10.0}  # deterministic, model-free policy for plumbing tests


def _cdr_string(payload: bytes) -> bytes:
    """A CDR (little endian) std_msgs/String carrying arbitrary bytes, as a misbehaving publisher would."""
    n = len(payload) + 1
    body = n.to_bytes(4, "little") + payload + b"\0"
    return b"\x00\x01\x00\x00" + body + b"\0" * (-len(body) % 4)


def _wait_matched(probe, pub, timeout=20.0):
    probe.wait_for(lambda: pub.get_subscription_count() > 0, timeout, f"a subscriber on {pub.topic_name}")


def _wait_status_publishers(probe, n, timeout=20.0):
    """Until the probe's status subscription has matched n nodes: a node reports a repeated status once,
    so a report sent before matching would never reach the probe (on a loaded machine discovery is slow)."""
    sub = next(s for s in probe.subscriptions if s.topic_name.endswith("molevla/status"))
    probe.wait_for(lambda: sub.get_publisher_count() >= n, timeout, f"status publishers of {n} nodes")


def test_instruction_status_and_bad_goals(ros):
    with ros(["instruction"]) as probe:
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        goals = probe.listen(String, "molevla/goal", LATCHED_QOS)
        pub = probe.create_publisher(String, "molevla/instruction", RELIABLE_QOS)
        _wait_matched(probe, pub)
        probe.wait_for(lambda: len(goals) >= 1, what="the latched empty goal")

        pub.publish(String(data="  pick up the red cube\n and put it in the tray "))
        probe.wait_for(lambda: any(s.startswith("accepted") for s in probe.statuses()), what="accepted")
        probe.wait_for(lambda: goals[-1].data == "pick up the red cube and put it in the tray", what="goal")
        assert "accepted: pick up the red cube" in probe.statuses()[-1], "whitespace alone is no cleaning to report"

        probe.spin_for(0.3)  # past the goal rate limit
        pub.publish(String(data="touch the \x1b[2Jred cube\x07"))  # a terminal escape and a bell
        probe.wait_for(lambda: goals[-1].data == "touch the red cube", what="the cleaned goal")
        probe.wait_for(lambda: probe.statuses()[-1].startswith("accepted (control characters removed): touch the red "
                                                               "cube"), what="the status saying it was cleaned")

        bad = {"": "empty", "x" * 5000: "too long", " \t\n ": "empty"}
        for text in bad:
            pub.publish(String(data=text))
        pub.publish(_cdr_string(b"pick up the \xff\xfe cube"))  # raw bytes: invalid UTF-8
        probe.wait_for(lambda: sum(s.startswith("rejected") for s in probe.statuses()) >= 4, what="4 rejections")
        rejected = [s for s in probe.statuses() if s.startswith("rejected")]
        assert any("empty" in s for s in rejected) and any("too long" in s for s in rejected)
        assert any("UTF-8" in s for s in rejected)
        assert goals[-1].data == "touch the red cube", "a rejected goal must not replace the active one"

        pub.publish(String(data="STOP!"))
        probe.wait_for(lambda: probe.statuses()[-1].startswith("stopped"), what="stopped")
        probe.wait_for(lambda: goals[-1].data == "", what="goal cleared by stop")


def test_success_counts_only_as_a_rising_edge_under_the_goal(ros):
    """A detector still reporting True from an earlier task never completes a new goal; False then True does."""
    with ros(["instruction"]) as probe:
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        pub = probe.create_publisher(String, "molevla/instruction", RELIABLE_QOS)
        success = probe.create_publisher(Bool, "molevla/task_success", 10)
        chunk_pub = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
        _wait_matched(probe, pub)
        _wait_matched(probe, success)
        _wait_matched(probe, chunk_pub)
        pub.publish(String(data="pick up the green cube and put it in the tray"))
        probe.wait_for(lambda: any(s.startswith("accepted") for s in probe.statuses()), what="accepted")

        def feed(value: bool, seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                chunk_pub.publish(_chunk(probe))
                success.publish(Bool(data=value))
                probe.spin_for(0.1)

        feed(True, 1.5)  # the previous task's leftover
        assert any(s.startswith("running") for s in probe.statuses()), probe.statuses()
        assert not any(s.startswith("succeeded") for s in probe.statuses()), probe.statuses()
        feed(False, 0.5)
        feed(True, 0.5)
        assert probe.statuses()[-1].startswith("succeeded: pick up the green cube"), probe.statuses()


def test_camera_node_takes_compressed_images(ros):
    """transport compressed: a JPEG on image_raw/compressed comes out resized with its stamp; a corrupt one is
    refused with a status and forwards nothing."""
    import io

    from PIL import Image as PILImage

    smooth = np.tile(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (480, 1, 3))
    buf = io.BytesIO()
    PILImage.fromarray(smooth).save(buf, format="JPEG")
    with ros(["camera"], {"camera": {"transport": "compressed"}}) as probe:
        frames = probe.listen(Image, "molevla/image", SENSOR_QOS)
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        pub = probe.create_publisher(CompressedImage, "image_raw/compressed", SENSOR_QOS)
        _wait_matched(probe, pub)
        msg = CompressedImage(format="jpeg", data=buf.getvalue())
        msg.header.stamp, msg.header.frame_id = to_stamp(12.5), "cam"
        end = time.monotonic() + 15
        while not frames and time.monotonic() < end:
            pub.publish(msg)
            probe.spin_for(0.1)
        assert frames, "no frame from a compressed image"
        f = frames[-1]
        assert (f.width, f.height, f.encoding, f.header.frame_id) == (224, 224, "rgb8", "cam")
        assert stamp_s(f.header.stamp) == pytest.approx(12.5)
        n = len(frames)
        pub.publish(CompressedImage(format="jpeg", data=b"\xff\xd8 garbage"))
        probe.wait_for(lambda: any("cannot decode" in s for s in probe.statuses()), 10, "refusal status")
        probe.spin_for(0.3)
        assert len(frames) == n


def test_sim_publishes_camera_info_with_each_frame(ros):
    """camera_info next to image_raw: same stamp and optical frame, K of the rendering camera."""
    from sensor_msgs.msg import CameraInfo

    from molevla_ros.sim.camera_model import intrinsics
    from molevla_ros.sim.scene import SimConfig

    with ros(["sim"]) as probe:
        infos = probe.listen(CameraInfo, "camera_info", SENSOR_QOS)
        images = probe.listen(Image, "image_raw", SENSOR_QOS)
        probe.wait_for(lambda: len(infos) > 2 and len(images) > 2, 30, "camera_info and images")
        info = infos[-1]
        cfg = SimConfig()
        assert (info.width, info.height) == (cfg.image_width, cfg.image_height) == (images[-1].width,
                                                                                    images[-1].height)
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)),
                                   intrinsics(cfg.image_width, cfg.image_height, cfg.camera_fov_deg))
        assert info.header.frame_id == images[-1].header.frame_id == "scene_camera"
        image_stamps = {stamp_s(m.header.stamp) for m in images}
        assert any(stamp_s(i.header.stamp) in image_stamps for i in infos)


def _fake_world(probe, image_encoding="bgr8"):
    """Publishers standing in for a camera, the arm's joint states and the sim's ground truth."""
    image_pub = probe.create_publisher(Image, "image_raw", SENSOR_QOS)
    joints_pub = probe.create_publisher(JointState, "joint_states", 10)
    state_pub = probe.create_publisher(MarkerArray, "sim/privileged_state", 5)
    goal_pub = probe.create_publisher(String, "molevla/goal", LATCHED_QOS)
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)

    def publish(q=None, image: Image | None = None, mangle_joints=None):
        stamp = probe.get_clock().now().to_msg()
        if image is None:
            image = rgb_to_msg(rgb[:, :, ::-1] if image_encoding == "bgr8" else rgb, stamp, "cam")
            image.encoding = image_encoding
        image_pub.publish(image)
        js, markers = fake_robot_msgs(stamp, q)
        if mangle_joints is not None:
            mangle_joints(js)
        joints_pub.publish(js)
        state_pub.publish(markers)
        return stamp

    return publish, goal_pub, image_pub


@pytest.mark.parametrize("source", ["camera", "raw"])
def test_image_to_policy_to_chunk(ros, source):
    """A 640x480 bgr8 camera image -> a chunk stamped with its capture time: through the camera node, or read raw by
    the policy itself (image_source raw: no camera node)."""
    nodes = ["camera", "policy"] if source == "camera" else ["policy"]
    with ros(nodes, {"policy": {**EXPERT, "image_source": source}}) as probe:
        chunks = probe.listen(JointTrajectory, "molevla/action_chunk", 10)
        frames = probe.listen(Image, "molevla/image", SENSOR_QOS)
        publish, goal_pub, image_pub = _fake_world(probe)
        goal_pub.publish(String(data=GOAL))
        _wait_matched(probe, image_pub)
        stamps = []
        end = time.monotonic() + 20
        # the probe's best-effort frame reader can miss frames the policy got: feed until it has one too
        while not (chunks and (frames or source != "camera")) and time.monotonic() < end:
            stamps.append(stamp_s(publish()))
            probe.spin_for(0.05)
        assert chunks, "no chunk arrived"
        assert frames or source != "camera", "the camera node published no resized frame"
        if source == "camera":
            frame = frames[-1]
            assert (frame.width, frame.height, frame.encoding) == (224, 224, "rgb8")
        c = chunks[-1]
        assert stamp_s(c.header.stamp) in stamps, "the chunk must carry its observation's capture stamp"
        assert len(c.points) == 16 and all(len(p.positions) == 7 for p in c.points)
        first = np.array(c.points[0].positions)
        assert first[0] > 0 and first[1] > 0 and first[6] == 0.0, "heads for the red cube with closed fingers"


JOINT_FAULTS = {  # a joint state the policy must refuse (read by name, length and stamp), and the status text
    "short_joints": (lambda js: setattr(js, "position", js.position[:4]), "9 names but 4 positions"),
    "unknown_joint_names": (lambda js: setattr(js, "name", [f"j{i}" for i in range(9)]), "lacks panda_joint1"),
    "joints_from_the_future": (lambda js: setattr(js.header, "stamp", to_stamp(stamp_s(js.header.stamp) + 1e6)),
                               "in the future"),
    "joints_from_1970": (lambda js: setattr(js.header, "stamp", to_stamp(1.0)), "s ago"),
}


TINY_FRAMES = {"frame_1x1": (1, 1), "frame_8x8": (8, 8), "frame_4000x1": (1, 4000)}  # (height, width)


@pytest.mark.parametrize("fault,source", [(f, "camera") for f in ["nan_joints", "bad_encoding", "wrong_size",
                                                                    *JOINT_FAULTS, *TINY_FRAMES]] +
                         [(f, "raw") for f in ["bad_encoding", "wrong_size", *TINY_FRAMES]])
def test_bad_inputs_give_status_and_no_chunk(ros, fault, source):
    """Each bad input: a status naming it, and no chunk (so no motion); frames far smaller than the model input or
    of an extreme aspect ratio are refused by the camera node and by the policy's raw path alike."""
    nodes = ["camera", "policy"] if source == "camera" else ["policy"]
    with ros(nodes, {"policy": {**EXPERT, "image_source": source}}) as probe:
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        chunks = probe.listen(JointTrajectory, "molevla/action_chunk", 10)
        publish, goal_pub, image_pub = _fake_world(probe, "yuv422" if fault == "bad_encoding" else "bgr8")
        goal_pub.publish(String(data=GOAL))
        _wait_matched(probe, image_pub)
        _wait_status_publishers(probe, len(nodes))
        q = [math.nan] + [0.0] * 8 if fault == "nan_joints" else None
        mangle, expect = JOINT_FAULTS.get(fault, (None, None))
        if fault in TINY_FRAMES:
            h, w = TINY_FRAMES[fault]
            expect = f"frame {w}x{h} is too small" if fault != "frame_4000x1" else f"frame {w}x{h}"
        expect = expect or {"nan_joints": "NaN", "bad_encoding": "unsupported encoding",
                            "wrong_size": "buffer has"}[fault]
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            image = None
            if fault == "wrong_size":
                image = rgb_to_msg(np.zeros((240, 320, 3), np.uint8), probe.get_clock().now().to_msg(), "cam")
                image.height = 480  # claims more rows than it carries
            elif fault in TINY_FRAMES:
                image = rgb_to_msg(np.full((*TINY_FRAMES[fault], 3), 128, np.uint8),
                                   probe.get_clock().now().to_msg(), "cam")
            publish(q, image, mangle)
            probe.spin_for(0.05)
        assert any(expect in s for s in probe.statuses()), probe.statuses()
        assert not chunks, "a bad input must never produce a chunk"


def _chunk_actions(vx=0.02):
    actions = np.zeros((16, 7))
    actions[:, 0] = vx  # 2 cm per 0.1 s step = 0.2 m/s
    actions[:, 6] = 1.0
    return actions


def _chunk(probe, vx=0.02):
    return chunk_to_msg(_chunk_actions(vx), probe.get_clock().now().to_msg(), SIM_ROBOT.base_frame, 0.1)


NO_INPUT_WATCH = {"camera_timeout_s": 0.0, "joint_state_timeout_s": 0.0}  # executor alone: no camera/joints


def _executor_under_goal(probe):
    """(twists the executor sends, goal publisher, chunk publisher), once a goal is set and the chunk reader matched;
    the status topic is recorded."""
    twists = probe.listen(TwistStamped, "servo_node/delta_twist_cmds", 50)
    probe.listen(String, "molevla/status", RELIABLE_QOS)
    goal_pub = probe.create_publisher(String, "molevla/goal", LATCHED_QOS)
    chunk_pub = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
    goal_pub.publish(String(data=GOAL))
    _wait_matched(probe, chunk_pub)
    probe.spin_for(0.5)
    return twists, goal_pub, chunk_pub


def test_executor_halts_when_chunks_stop(ros):
    with ros(["executor"], {"executor": {"chunk_timeout_s": 0.3, **NO_INPUT_WATCH}}) as probe:
        twists, _, chunk_pub = _executor_under_goal(probe)
        for _ in range(10):  # 2 s of chunks at 5 Hz
            chunk_pub.publish(_chunk(probe))
            probe.spin_for(0.2)
        moving = [t.twist.linear.x for t in twists[-20:]]
        assert max(moving) == pytest.approx(0.2, abs=1e-6), "executes the chunk at 0.2 m/s"
        stopped_at = time.monotonic()
        probe.spin_for(1.0)
        _assert_zero_after(twists, probe.arrival["servo_node/delta_twist_cmds"], stopped_at + 0.3 + 0.1)
        assert any("no fresh action chunk" in s for s in probe.statuses())


def test_executor_rejects_nan_and_stale_chunks(ros):
    with ros(["executor"], {"executor": NO_INPUT_WATCH}) as probe:
        estop_pub = probe.create_publisher(Bool, "molevla/estop", LATCHED_QOS)
        twists, _, chunk_pub = _executor_under_goal(probe)
        nan = _chunk(probe)
        nan.points[3].positions[1] = math.nan
        chunk_pub.publish(nan)
        old = _chunk(probe)
        old.header.stamp = to_stamp(stamp_s(old.header.stamp) - 5.0)
        chunk_pub.publish(old)
        future = _chunk(probe)
        future.header.stamp = to_stamp(stamp_s(future.header.stamp) + 5.0)
        chunk_pub.publish(future)
        probe.spin_for(1.0)
        assert twists and all(t.twist.linear.x == 0.0 and t.twist.linear.y == 0.0 for t in twists), \
            "the executor ticks (zero commands) and no motion comes from bad chunks"
        text = " | ".join(probe.statuses())
        assert "NaN" in text and "stale" in text and "future" in text, text
        n = len(twists)
        for _ in range(3):  # the control: a valid chunk does move the arm
            chunk_pub.publish(_chunk(probe))
            probe.spin_for(0.1)
        assert any(t.twist.linear.x > 0.05 for t in twists[n:]), "a valid chunk after the refused ones moves the arm"
        estop_pub.publish(Bool(data=True))
        probe.wait_for(lambda: any(s.startswith("stopped: e-stop") for s in probe.statuses()), what="e-stop")
        n = len(twists)
        for _ in range(5):
            chunk_pub.publish(_chunk(probe))
            probe.spin_for(0.1)
        assert twists[n:] and all(t.twist.linear.x == 0.0 for t in twists[n:]), "e-stop holds the arm"


def test_executor_drops_out_of_order_chunks_and_a_replaced_goals_chunks(ros):
    """A chunk stamped before the one already queued is dropped with a status, and the queued one runs on. A new goal
    drops the old goal's queued chunks at once (not after chunk_timeout_s, 0.5 s, or the chunk's 1.6 s), and a chunk
    observed before the change that arrives after it; the new goal's chunks move the arm again."""
    with ros(["executor"], {"executor": NO_INPUT_WATCH}) as probe:
        twists, goal_pub, chunk_pub = _executor_under_goal(probe)
        for _ in range(5):
            chunk_pub.publish(_chunk(probe))
            probe.spin_for(0.1)
        backwards = _chunk(probe, vx=-0.02)
        backwards.header.stamp = to_stamp(stamp_s(backwards.header.stamp) - 0.3)
        chunk_pub.publish(backwards)
        probe.wait_for(lambda: any("out of order" in s for s in probe.statuses()), 5, "the out-of-order status")
        probe.spin_for(0.1)
        assert twists[-1].twist.linear.x > 0.1, "the newer, queued chunk still leads"
        chunk_pub.publish(_chunk(probe))  # fresh: without a goal change it would run for chunk_timeout_s at least
        probe.spin_for(0.05)
        in_flight = _chunk(probe)  # observed under the old goal, published after the change (a policy step under way)
        changed = time.monotonic()
        goal_pub.publish(String(data="touch the blue cube"))
        probe.spin_for(0.1)
        chunk_pub.publish(in_flight)
        probe.spin_for(0.35)
        _assert_zero_after(twists, probe.arrival["servo_node/delta_twist_cmds"], changed + 0.25)
        assert any(s.startswith("ok: executor: goal changed to 'touch the blue cube'") for s in probe.statuses())
        for _ in range(3):
            chunk_pub.publish(_chunk(probe))
            probe.spin_for(0.1)
        assert twists[-1].twist.linear.x > 0.05, "the new goal's chunks move the arm"


def _assert_zero_after(twists, arrivals, t0):
    """Twists arrived after t0 (monotonic) and every one of them is zero."""
    after = [t.twist for t, at in zip(twists, arrivals) if at > t0]
    assert after, "no command arrived in the window: the executor stopped ticking"
    assert all(v.linear.x == v.linear.y == v.linear.z == 0.0 for v in after), [v.linear for v in after]


def _moving(probe, twists, feed, chunk_pub, seconds=1.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        feed()
        chunk_pub.publish(_chunk(probe))
        probe.spin_for(0.05)
    return twists[-1].twist.linear.x > 0.1


@pytest.mark.parametrize("source", ["camera", "raw"])
def test_executor_watchdogs_stale_camera_and_lost_policy(ros, source):
    """Stale camera (the frames the policy reads: the camera node's, or raw) -> halt; chunk publisher gone
    (liveliness) -> halt."""
    with ros(["executor"], {"executor": {"chunk_timeout_s": 2.0, "image_source": source}}) as probe:
        twists = probe.listen(TwistStamped, "servo_node/delta_twist_cmds", 50)
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        goal_pub = probe.create_publisher(String, "molevla/goal", LATCHED_QOS)
        chunk_pub = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
        image_pub = probe.create_publisher(Image, {"camera": "molevla/image", "raw": "image_raw"}[source], SENSOR_QOS)
        joints_pub = probe.create_publisher(JointState, "joint_states", 10)
        rgb = np.zeros((8, 8, 3), np.uint8)
        camera_on = [True]

        def feed():
            stamp = probe.get_clock().now().to_msg()
            joints_pub.publish(fake_robot_msgs(stamp)[0])
            if camera_on[0]:
                image_pub.publish(rgb_to_msg(rgb, stamp, "cam"))

        goal_pub.publish(String(data=GOAL))
        _wait_matched(probe, chunk_pub)
        assert _moving(probe, twists, feed, chunk_pub), "moves with fresh chunks, camera and joints"
        def feed_until(predicate, seconds=3.0):
            end = time.monotonic() + seconds
            while not predicate() and time.monotonic() < end:
                feed()
                probe.spin_for(0.02)
            return predicate()

        camera_on[0] = False
        stall = time.monotonic()
        assert feed_until(lambda: any("camera stale" in s for s in probe.statuses())), probe.statuses()
        probe.spin_for(0.2)
        times = probe.arrival["servo_node/delta_twist_cmds"]
        _assert_zero_after(twists, times, stall + 0.35 + 0.1)
        camera_on[0] = True
        assert _moving(probe, twists, feed, chunk_pub), "moves again once the camera is back"
        probe.destroy_publisher(chunk_pub)  # the policy goes away
        gone = time.monotonic()
        assert feed_until(lambda: any("liveliness" in s for s in probe.statuses())), probe.statuses()
        feed_until(lambda: False, 0.3)
        _assert_zero_after(twists, times, gone + 0.2)


def test_executor_dry_run_computes_commands_but_publishes_nothing(ros):
    """Dry run: chunks are accepted and commands computed (counted on /diagnostics), none reaches the robot."""
    with ros(["executor"], {"executor": {**NO_INPUT_WATCH, "dry_run": True}}) as probe:
        twists = probe.listen(TwistStamped, "servo_node/delta_twist_cmds", 50)
        grip = probe.listen(Float64, "molevla/gripper_command", 10)
        diagnostics = probe.listen(DiagnosticArray, "/diagnostics", 50)
        goal_pub = probe.create_publisher(String, "molevla/goal", LATCHED_QOS)
        chunk_pub = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
        goal_pub.publish(String(data=GOAL))
        _wait_matched(probe, chunk_pub)

        def counters():
            last = {kv.key: kv.value for arr in diagnostics[-1:] for st in arr.status for kv in st.values}
            return int(last.get("dry_run_commands", 0)), last.get("chunks_rejected", "0")

        end = time.monotonic() + 10.0
        while time.monotonic() < end and counters()[0] < 20:
            chunk_pub.publish(_chunk(probe))
            probe.spin_for(0.1)
        computed, rejected = counters()
        assert computed >= 20 and rejected == "0", f"chunks accepted and commands computed: {computed}, {rejected}"
        assert not twists and not grip, "nothing reaches the robot topics"


def _loop_ready(probe, timeout: float):
    """Full-loop tests: statuses recorded, the sim's task seen and the instruction node listening; returns
    (the task's instruction, the instruction publisher)."""
    probe.listen(String, "molevla/status", RELIABLE_QOS)
    task = probe.listen(String, "sim/task", LATCHED_QOS)
    pub = probe.create_publisher(String, "molevla/instruction", RELIABLE_QOS)
    probe.wait_for(lambda: task and pub.get_subscription_count() > 0, timeout, "nodes up")
    return task[0].data, pub


def test_full_loop_succeeds_in_sim(ros):
    """sim + camera + instruction + policy + executor: a language goal ends in 'succeeded'."""
    nodes = ["sim", "camera", "instruction", "policy", "executor"]
    overrides = {"sim": {"task_family": "touch", "seed": 3}, "policy": {"backend": "scripted_expert"}}
    with ros(nodes, overrides) as probe:
        success = probe.listen(Bool, "molevla/task_success", 10)
        diagnostics = probe.listen(DiagnosticArray, "/diagnostics", 50)
        task, pub = _loop_ready(probe, 30)
        probe.wait_for(lambda: success, 30, "sim reporting")
        assert not any(m.data for m in success), "no success before any motion"
        pub.publish(String(data=task))
        probe.wait_for(lambda: any(s.startswith("succeeded") for s in probe.statuses()), 40, "succeeded")
        seq = [s.split(":")[0] for s in probe.statuses() if s.split(":")[0] in ("accepted", "running", "succeeded")]
        assert seq[:3] == ["accepted", "running", "succeeded"], seq
        expected = {f"molevla: {n}" for n in nodes}
        reporting = lambda: {st.name for arr in diagnostics for st in arr.status}  # noqa: E731
        probe.wait_for(lambda: expected <= reporting(), 5, f"every node on /diagnostics (seen {reporting()})")


def test_demo_runs_the_default_model(domain, tmp_path):
    """`molevla demo` with no backend option: the shipped default model (not the scripted expert) drives the
    whole loop, and a touch goal on an evaluation layout (seed 1000, never trained on) succeeds."""
    import json
    import os
    import subprocess
    import sys

    from molevla_ros.paths import DEFAULT_MODEL

    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    run = subprocess.run([sys.executable, "-m", "molevla_ros.cli", "demo", "--task", "touch", "--out", str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "policy: mole_torch, model " + DEFAULT_MODEL in run.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["backend"], result["model"]) == ("mole_torch", DEFAULT_MODEL)
    assert result["policy_steps"] > 0 and result["success"], result


@pytest.mark.parametrize("backend", ["mole_torch", "mole_onnx"])
def test_mole_policy_publishes_chunk_and_layer_mask(ros, tmp_path, monkeypatch, backend, tiny):
    """The MoLe backends in the policy node: chunks from camera frames, the kept-layer mask on its topic."""
    import torch
    from diagnostic_msgs.msg import DiagnosticStatus
    from std_msgs.msg import UInt8MultiArray

    from molevla_ros.model.io import save_model
    from molevla_ros.model.mole_vla import MoLeVLA

    torch.manual_seed(0)
    save_model(MoLeVLA(tiny(0.5)).eval(), tmp_path / "tiny_model")
    monkeypatch.setenv("MOLEVLA_CACHE", str(tmp_path / "cache"))  # where mole_onnx exports its graphs
    overrides = {"policy": {"backend": backend, "model_dir": str(tmp_path / "tiny_model"), "control_hz": 10.0}}
    with ros(["camera", "policy"], overrides) as probe:
        chunks = probe.listen(JointTrajectory, "molevla/action_chunk", 10)
        masks = probe.listen(UInt8MultiArray, "molevla/layer_mask", 10)
        stats = probe.listen(DiagnosticStatus, "molevla/policy_stats", 10)
        publish, goal_pub, image_pub = _fake_world(probe)
        goal_pub.publish(String(data=GOAL))
        _wait_matched(probe, image_pub)
        end = time.monotonic() + 30
        while not (chunks and masks and stats) and time.monotonic() < end:
            publish()
            probe.spin_for(0.05)
        assert chunks and masks and stats, "no chunk/mask/stats from the MoLe backend"
        assert len(chunks[-1].points) == 4 and all(np.isfinite(p.positions).all() for p in chunks[-1].points)
        mask = np.frombuffer(bytes(masks[-1].data), np.uint8)
        assert mask.shape == (6,) and mask.sum() == 3
        values = {kv.key: kv.value for kv in stats[-1].values}
        assert values["backend"] == backend and values["layers_kept"] == "3"
        # a late subscriber still learns the node's state (status latched), and /diagnostics carries the step's
        # numbers and the ready flag
        late = probe.listen(String, "molevla/status", STATUS_QOS)
        diagnostics = probe.listen(DiagnosticArray, "/diagnostics", 10)
        policy_values = lambda: {kv.key: kv.value for arr in diagnostics for st in arr.status  # noqa: E731
                                 if st.name == "molevla: policy" for kv in st.values}
        probe.wait_for(lambda: any(s.data.startswith("ready: policy ready") for s in late), 5, "latched ready status")
        probe.wait_for(lambda: "layers_kept" in policy_values(), 5, "policy numbers on /diagnostics")
        v = policy_values()
        assert v["ready"] == "True" and v["layers_kept"] == "3" and v["backend"] == backend
        assert float(v["latency_ms"]) > 0 and float(v["rate_hz"]) >= 0 and float(v["frame_wait_ms"]) >= 0


def test_imported_cogact_drives_the_simulated_loop(ros, cogact):
    """sim + camera + instruction + policy (an imported CogACT, random weights) + executor: chunks at the
    model's own period (Bridge: 0.2 s), the status says the router is untrained (full depth), the arm moves
    within its limits."""
    nodes = ["sim", "camera", "instruction", "policy", "executor"]
    overrides = {"sim": {"task_family": "touch", "seed": 3},
                 "policy": {"backend": "mole_torch", "model_dir": str(cogact.model), "control_hz": 2.0}}
    with ros(nodes, overrides) as probe:
        chunks = probe.listen(JointTrajectory, "molevla/action_chunk", 10)
        twists = probe.listen(TwistStamped, "servo_node/delta_twist_cmds", 200)
        task, pub = _loop_ready(probe, 60)
        pub.publish(String(data=task))
        moving = lambda: [t for t in twists if math.hypot(t.twist.linear.x, t.twist.linear.y, t.twist.linear.z) > 0]  # noqa: E731
        probe.wait_for(lambda: len(chunks) >= 2 and len(moving()) >= 5, 60, "chunks and motion")
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in chunks[-1].points]
        assert len(times) == 16 and times[1] == pytest.approx(0.2) and times[-1] == pytest.approx(3.0)
        probe.wait_for(lambda: any("router not trained" in s and "full depth" in s for s in probe.statuses()), 10,
                       "a status saying the imported model runs full depth")
        assert max(math.hypot(t.twist.linear.x, t.twist.linear.y, t.twist.linear.z) for t in twists) <= 0.3 + 1e-6
        assert not any("refused chunk" in s for s in probe.statuses()), [s for s in probe.statuses() if "refus" in s]


def test_unavailable_backend_reports_and_never_moves(ros, tmp_path):
    overrides = {"policy": {"backend": "mole_torch", "model_dir": str(tmp_path / "missing"), "control_hz": 10.0}}
    with ros(["policy"], overrides) as probe:
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        chunks = probe.listen(JointTrajectory, "molevla/action_chunk", 10)
        goal_pub = probe.create_publisher(String, "molevla/goal", LATCHED_QOS)
        goal_pub.publish(String(data=GOAL))
        probe.wait_for(lambda: any("cannot load" in s and "available:" in s for s in probe.statuses()), 20,
                       "a status naming the problem and the available backends")
        assert not chunks


@pytest.mark.parametrize("robot", ["panda_sim", "fr3"])
def test_joint_trajectory_interface_commands_ik_of_the_twist(ros, robot):
    """interface joint_trajectory: a subscriber on the profile's controller topic gets trajectories that Jazzy's
    joint_trajectory_controller accepts with its defaults (its validation rules: standins/jtc.py), named with the
    profile's joints (Panda or FR3), whose forward kinematics move the hand the way the chunk asks. The joint states
    name the joints in another order, with a finger first: read by position instead of by name, the target would be
    far from the arm."""
    from jtc import jtc_refusal

    from molevla_ros import franka_kinematics as kin
    from molevla_ros.robot_profile import load

    profile = load(robot)
    names, fingers = list(profile.arm_joints), list(profile.finger_joints)
    q = [0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8]
    overrides = {"executor": {"interface": "joint_trajectory", "camera_timeout_s": 0.0, "robot": robot}}
    with ros(["executor"], overrides) as probe:
        trajs = probe.listen(JointTrajectory, profile.joint_trajectory_topic, 50)
        twists = probe.listen(TwistStamped, "servo_node/delta_twist_cmds", 50)
        goal_pub = probe.create_publisher(String, "molevla/goal", LATCHED_QOS)
        chunk_pub = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
        joints_pub = probe.create_publisher(JointState, "joint_states", 10)
        goal_pub.publish(String(data=GOAL))
        _wait_matched(probe, chunk_pub)
        for _ in range(20):
            js = JointState(name=fingers[:1] + names[::-1], position=[0.04] + q[::-1])
            js.header.stamp = probe.get_clock().now().to_msg()
            joints_pub.publish(js)
            chunk_pub.publish(chunk_to_msg(_chunk_actions(), probe.get_clock().now().to_msg(), profile.base_frame,
                                           0.1))  # +x at 0.2 m/s
            probe.spin_for(0.05)
        assert trajs and not twists, "commands go to the controller topic only"
        now = probe.get_clock().now().nanoseconds * 1e-9
        assert all(jtc_refusal(t, names, now) is None for t in trajs), jtc_refusal(trajs[-1], names, now)
        last = trajs[-1]
        assert last.joint_names == names and len(last.points) == 1
        target = np.array(last.points[0].positions)
        assert np.abs(target - q).max() < 0.2, ("a small step from the arm's own joint positions", target, q)
        move = kin.forward(target)[:3, 3] - kin.forward(np.array(q))[:3, 3]
        assert move[0] > 0.01 and abs(move[1]) < 0.2 * move[0] and abs(move[2]) < 0.2 * move[0], move


def test_joint_trajectory_halts_hold_the_joints_where_they_are():
    """A halt (zero command) targets the arm's own joint positions, even for a joint within joint_limit_margin of its
    limit, which a motion may not enter: clipping the halt's target to the margin would move that joint. A motion never
    pulls such a joint out of the margin either, only stops it going further."""
    from types import SimpleNamespace

    from molevla_ros.control.chunk_executor import Command
    from molevla_ros.nodes.robot_interfaces import JointTrajectoryInterface
    from molevla_ros.robot_profile import load

    profile = load("fr3")
    q = np.array([0.0, -0.35, 0.0, -2.3, 0.0, profile.joint_lower[5] + 0.01, 0.785])  # joint 6 inside the margin
    sent = []
    publisher = SimpleNamespace(publish=sent.append)  # the interface's publisher; its messages are what is tested
    jt = JointTrajectoryInterface(SimpleNamespace(create_publisher=lambda *a: publisher), profile, lambda: q, 0.1)
    jt.send(Command(), None)
    np.testing.assert_array_equal(sent[-1].points[0].positions, q)
    jt.send(Command(linear=np.array([0.05, 0.0, 0.0]), active=True), None)
    target = np.array(sent[-1].points[0].positions)
    assert abs(target[5] - q[5]) < 0.02, ("a small IK step, not a jump to the margin's edge 0.04 rad away", target, q)


def test_jtc_acceptance_rules_catch_what_the_controller_rejects():
    """The stand-in controller's rules reject what Jazzy's controller rejects (so the test above can fail)."""
    from jtc import jtc_refusal
    from trajectory_msgs.msg import JointTrajectoryPoint

    names = [f"j{i}" for i in range(1, 8)]
    point = JointTrajectoryPoint(positions=[0.0] * 7, time_from_start=to_duration(0.1))
    ok = JointTrajectory(joint_names=names, points=[point])
    assert jtc_refusal(ok, names, 0.0) is None
    moving_end = JointTrajectory(joint_names=names, points=[JointTrajectoryPoint(
        positions=[0.0] * 7, velocities=[0.1] * 7, time_from_start=to_duration(0.1))])
    assert "Velocity of last trajectory point" in jtc_refusal(moving_end, names, 0.0)
    other = JointTrajectory(joint_names=[f"k{i}" for i in range(1, 8)], points=ok.points)
    assert "doesn't match the controller's joints" in jtc_refusal(other, names, 0.0)
    assert "don't match the controller joints" in jtc_refusal(JointTrajectory(joint_names=names[:3], points=[
        JointTrajectoryPoint(positions=[0.0] * 3, time_from_start=to_duration(0.1))]), names, 0.0)
    backwards = JointTrajectory(joint_names=names, points=[point, JointTrajectoryPoint(
        positions=[0.0] * 7, time_from_start=to_duration(0.05))])
    assert "not strictly increasing" in jtc_refusal(backwards, names, 0.0)
    ended = JointTrajectory(joint_names=names, points=[point])
    ended.header.stamp = to_stamp(100.0)
    assert "ends in the past" in jtc_refusal(ended, names, 200.0)


def test_unavailable_robot_interface_reports_and_never_moves(ros):
    """interface moveit_py where MoveIt's Python API is missing: the executor says so and never moves."""
    with ros(["executor"], {"executor": {**NO_INPUT_WATCH, "interface": "moveit_py"}}) as probe:
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        twists = probe.listen(TwistStamped, "servo_node/delta_twist_cmds", 50)
        goal_pub = probe.create_publisher(String, "molevla/goal", LATCHED_QOS)
        chunk_pub = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
        goal_pub.publish(String(data=GOAL))
        probe.wait_for(lambda: any("moveit_py is not importable" in s for s in probe.statuses()), 20,
                       "status naming moveit_py")
        for _ in range(5):
            chunk_pub.publish(_chunk(probe))
            probe.spin_for(0.1)
        assert not twists


def test_one_policy_node_serves_two_robots_in_one_batch(ros, tmp_path, tiny):
    """robots: ['r1', 'r2']: per-robot topics in, per-robot chunks and layer masks out, one batch per tick."""
    import torch
    from diagnostic_msgs.msg import DiagnosticStatus
    from std_msgs.msg import UInt8MultiArray

    from molevla_ros.model.io import save_model
    from molevla_ros.model.mole_vla import MoLeVLA

    torch.manual_seed(0)
    save_model(MoLeVLA(tiny(0.5)).eval(), tmp_path / "tiny_model")
    overrides = {"policy": {"backend": "mole_torch", "model_dir": str(tmp_path / "tiny_model"), "control_hz": 10.0,
                            "robots": "[r1, r2]", "trigger": "timer"}}
    with ros(["policy"], overrides) as probe:
        rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        pubs, chunks, masks, stats = {}, {}, {}, {}
        for r in ("r1", "r2"):
            pubs[r] = (probe.create_publisher(Image, f"{r}/molevla/image", SENSOR_QOS),
                       probe.create_publisher(JointState, f"{r}/joint_states", 10),
                       probe.create_publisher(String, f"{r}/molevla/goal", LATCHED_QOS))
            chunks[r] = probe.listen(JointTrajectory, f"{r}/molevla/action_chunk", 10)
            masks[r] = probe.listen(UInt8MultiArray, f"{r}/molevla/layer_mask", 10)
            stats[r] = probe.listen(DiagnosticStatus, f"{r}/molevla/policy_stats", 10)
            pubs[r][2].publish(String(data=GOAL if r == "r1" else "push the blue cube to the green target"))
        _wait_matched(probe, pubs["r2"][0])
        end = time.monotonic() + 30
        while not all(chunks[r] and masks[r] and stats[r] for r in pubs) and time.monotonic() < end:
            for image_pub, joints_pub, _ in pubs.values():
                stamp = probe.get_clock().now().to_msg()
                image_pub.publish(rgb_to_msg(rgb, stamp, "cam"))
                joints_pub.publish(fake_robot_msgs(stamp)[0])
            probe.spin_for(0.05)
        assert all(chunks[r] and masks[r] and stats[r] for r in pubs), "each robot gets its own chunks and masks"
        batches = {kv.value for r in pubs for s in stats[r] for kv in s.values if kv.key == "batch"}
        assert "2" in batches, f"both robots served in one batch: {batches}"


def test_estop_release_holds_until_new_goal_or_resume(ros):
    """Releasing the e-stop never restarts motion; a new goal or molevla/resume does."""
    from std_srvs.srv import Trigger

    with ros(["executor"], {"executor": NO_INPUT_WATCH}) as probe:
        twists = probe.listen(TwistStamped, "servo_node/delta_twist_cmds", 50)
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        goal_pub = probe.create_publisher(String, "molevla/goal", LATCHED_QOS)
        chunk_pub = probe.create_publisher(JointTrajectory, "molevla/action_chunk", CHUNK_PUB_QOS)
        estop_pub = probe.create_publisher(Bool, "molevla/estop", LATCHED_QOS)
        resume = probe.create_client(Trigger, "molevla/resume")
        goal_pub.publish(String(data=GOAL))
        _wait_matched(probe, chunk_pub)

        def drive(seconds=0.8) -> bool:  # chunks at 20 Hz; True if the arm moved meanwhile
            n = len(twists)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                chunk_pub.publish(_chunk(probe))
                probe.spin_for(0.05)
            return any(t.twist.linear.x > 0 for t in twists[n:])

        assert drive(), "moves before the e-stop"
        for release in ("new goal", "resume"):
            seen = len(probe.statuses())  # this round's e-stop report, not the last round's
            estop_pub.publish(Bool(data=True))
            probe.wait_for(lambda seen=seen: any(s.startswith("stopped: e-stop") for s in probe.statuses()[seen:]),
                           what="e-stop")
            probe.spin_for(0.1)  # commands sent before the executor read the e-stop may still be in flight
            assert not drive(0.5), "the e-stop holds the arm"
            estop_pub.publish(Bool(data=False))
            probe.wait_for(lambda: "e-stop released" in probe.statuses()[-1], what="release reported")
            assert not drive(1.0), "releasing the e-stop alone must not restart motion"
            if release == "new goal":
                goal_pub.publish(String(data=GOAL))
            else:
                answer = probe.call(resume, Trigger.Request(), "the resume reply")
                assert answer.success, answer.message
            assert drive(), f"moves again after a {release}"


def test_diagnostics_return_to_ok_when_good_frames_resume(ros):
    """One rejected frame: a refused-input status and WARN on /diagnostics, back to OK while good frames flow."""
    from diagnostic_msgs.msg import DiagnosticStatus

    with ros(["camera"]) as probe:
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        diagnostics = probe.listen(DiagnosticArray, "/diagnostics", 50)
        image_pub = probe.create_publisher(Image, "image_raw", SENSOR_QOS)
        _wait_matched(probe, image_pub)
        _wait_status_publishers(probe, 1)
        good = rgb_to_msg(np.zeros((120, 160, 3), np.uint8), probe.get_clock().now().to_msg(), "cam")
        bad = rgb_to_msg(np.zeros((48, 64, 3), np.uint8), probe.get_clock().now().to_msg(), "cam")
        bad.encoding = "yuv422"
        for _ in range(50):  # best effort: a frame sent before both sides have matched is lost
            image_pub.publish(bad)
            probe.spin_for(0.2)
            if any(s.startswith("rejected") for s in probe.statuses()):
                break
        assert any(s.startswith("rejected") for s in probe.statuses()), probe.statuses()

        def levels_after(t0):
            return [st.level for arr, at in zip(diagnostics, probe.arrival["/diagnostics"]) if at > t0
                    for st in arr.status]

        t_bad = time.monotonic()
        end = time.monotonic() + 8.0
        while time.monotonic() < end and DiagnosticStatus.OK not in levels_after(t_bad + 0.1):
            image_pub.publish(good)
            probe.spin_for(0.1)
        levels = levels_after(t_bad)
        assert DiagnosticStatus.WARN in levels, f"the refused frame shows as WARN first: {levels}"
        assert levels[-1] == DiagnosticStatus.OK, f"back to OK while good frames flow: {levels}"
        assert DiagnosticStatus.ERROR not in levels, levels


def test_parameters_are_checked_at_start_and_read_only_after(ros, tmp_path, domain):
    """A value outside a parameter's range or choices stops the node at start-up with a message naming it; a
    running node refuses `ros2 param set` (read-only) instead of accepting a value it would ignore."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    from molevla_ros.bringup import Bringup, use_local_domain

    use_local_domain(domain)
    with Bringup(["executor", "policy"], {"executor": {"rate_hz": -5.0, "interface": "teleport"},
                                          "policy": {"robot": "ur5"}}, log_dir=tmp_path / "bad") as bad:
        end = time.monotonic() + 30
        while len(bad.dead()) < 2 and time.monotonic() < end:
            time.sleep(0.2)
        assert bad.dead() == {"executor": 2, "policy": 2}, bad.dead()
    executor_log = (tmp_path / "bad" / "executor.log").read_text()
    assert "rate_hz = -5.0 is outside [1.0, 1000.0]" in executor_log
    assert "interface = 'teleport' is not one of servo, joint_trajectory, moveit_py" in executor_log
    policy_log = (tmp_path / "bad" / "policy.log").read_text()
    assert "no robot profile 'ur5'" in policy_log and "shipped: fr3, panda_sim" in policy_log

    with ros(["executor"], {"executor": NO_INPUT_WATCH}) as probe:
        client = probe.create_client(SetParameters, "executor/set_parameters")
        probe.wait_for(lambda: client.service_is_ready(), 20, "the executor's parameter service")
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.05)
        reply = probe.call(client, SetParameters.Request(parameters=[Parameter(name="rate_hz", value=value)]),
                           "the set_parameters reply")
        result = reply.results[0]
        assert not result.successful and "read-only" in result.reason.lower(), result


def test_frame_trigger_steps_on_new_frames_at_most_control_hz(ros):
    """trigger frame: each chunk comes from a frame not used before, no faster than control_hz; with frames at
    3 Hz (below control_hz) every frame gets its step; when frames stop, steps stop and the timer says why."""
    from diagnostic_msgs.msg import DiagnosticStatus

    with ros(["camera", "policy"], {"policy": {**EXPERT, "control_hz": 5.0, "trigger": "frame",
                                               "frame_timeout_s": 0.5}}) as probe:
        chunks = probe.listen(JointTrajectory, "molevla/action_chunk", 50)
        stats = probe.listen(DiagnosticStatus, "molevla/policy_stats", 50)
        probe.listen(String, "molevla/status", RELIABLE_QOS)
        publish, goal_pub, image_pub = _fake_world(probe)
        goal_pub.publish(String(data=GOAL))
        _wait_matched(probe, image_pub)
        end = time.monotonic() + 30
        while not chunks and time.monotonic() < end:
            publish()
            probe.spin_for(0.05)
        for rate, seconds in ((20.0, 3.0), (3.0, 3.0)):  # frames faster, then slower than control_hz
            start, sent = len(chunks), 0
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                publish()
                sent += 1
                probe.spin_for(1.0 / rate)
            probe.spin_for(0.2)
            got = len(chunks) - start
            if rate > 5.0:
                assert 0.6 * 5.0 * seconds <= got <= 5.0 * seconds + 1, (rate, got)
            else:
                assert sent - 2 <= got <= sent + 1, (rate, sent, got)
        obs = [float({kv.key: kv.value for kv in s.values}["obs_stamp"]) for s in stats]
        assert len(set(obs)) == len(obs), "a frame was used for two steps"
        n = len(chunks)
        probe.spin_for(1.5)  # no frames: no step, and the timer reports the stale frame
        assert len(chunks) == n
        assert any("camera frame stale" in s for s in probe.statuses()), probe.statuses()[-3:]


def test_compute_knob_changes_layers_at_run_time(ros, tmp_path, tiny):
    """keep_layers and latency_budget_ms are the dynamic parameters: `ros2 param set` is checked (out of range is
    refused with the reason) and acts on the next steps' layer count; a huge budget keeps every layer, a tiny
    one keeps one."""
    import torch
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from std_msgs.msg import UInt8MultiArray

    from molevla_ros.model.io import save_model
    from molevla_ros.model.mole_vla import MoLeVLA

    torch.manual_seed(0)
    save_model(MoLeVLA(tiny(0.5)).eval(), tmp_path / "tiny_model")
    overrides = {"policy": {"backend": "mole_torch", "model_dir": str(tmp_path / "tiny_model"), "control_hz": 10.0}}
    with ros(["camera", "policy"], overrides) as probe:
        masks = probe.listen(UInt8MultiArray, "molevla/layer_mask", 50)
        publish, goal_pub, image_pub = _fake_world(probe)
        client = probe.create_client(SetParameters, "policy/set_parameters")
        goal_pub.publish(String(data=GOAL))
        _wait_matched(probe, image_pub)
        probe.wait_for(lambda: client.service_is_ready(), 20, "the policy's parameter service")

        def kept(n: int = 3) -> list[int]:
            start, end = len(masks), time.monotonic() + 20
            while len(masks) < start + n and time.monotonic() < end:
                publish()
                probe.spin_for(0.05)
            return [int(np.frombuffer(bytes(m.data), np.uint8).sum()) for m in masks[start:]]

        def set_param(name: str, value) -> tuple[bool, str]:
            v = (ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value) if isinstance(value, int)
                 else ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))
            r = probe.call(client, SetParameters.Request(parameters=[Parameter(name=name, value=v)]),
                           "the set_parameters reply").results[0]
            kept(2)  # steps that may have started before the change
            return r.successful, r.reason

        assert set(kept()) == {3}  # the model's own keep ratio: 0.5 of 6
        assert set_param("keep_layers", 5)[0] and set(kept()) == {5}
        ok, reason = set_param("keep_layers", 2000)
        assert not ok and "outside [0, 1024]" in reason and set(kept()) == {5}
        assert set_param("latency_budget_ms", 1e4)[0] and set(kept()) == {6}
        assert set_param("latency_budget_ms", 1e-3)[0] and set(kept()) == {1}
        assert set_param("latency_budget_ms", 0.0)[0] and set_param("keep_layers", 0)[0] and set(kept()) == {3}
