"""Regenerate molevla_ros/config/<node>.yaml from the parameters the nodes declare (test_config.py checks them)."""
import importlib
import textwrap
from pathlib import Path

from molevla_ros.bringup import NODES

HEADS = {
    "sim": "Simulated Franka Panda (PyBullet), the default robot. Renders image_raw, publishes joint_states,\n"
           "# executes MoveIt Servo twists on servo_node/delta_twist_cmds and gripper commands.",
    "camera": "camera: validates any rgb8/bgr8/rgba8/bgra8/mono8 image on image_raw and republishes it resized\n"
              "# as rgb8 on molevla/image, keeping the capture stamp.",
    "instruction": "instruction: language goals on molevla/instruction (std_msgs/String); the active goal is latched\n"
                   "# on molevla/goal; molevla/status reports accepted/rejected/running/succeeded/failed/stopped.\n"
                   "# The same goals come as the molevla/language_goal action (molevla_interfaces/LanguageGoal).",
    "policy": "policy: latest frame + goal + joint state -> action chunk (trajectory_msgs/JointTrajectory) on\n"
              "# molevla/action_chunk, with molevla/layer_mask and molevla/policy_stats.",
    "executor": "executor: action chunks -> limited end-effector twists (geometry_msgs/TwistStamped) on\n"
                "# servo_node/delta_twist_cmds + gripper commands; halts on stale or missing chunks and on e-stop.",
}


def value(v):
    return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else repr(v)


for name, module in NODES.items():
    lines = [f"# {HEADS[name]}", "# Every key is a declared parameter; the value shown is the default.", f"/**/{name}:",
             "  ros__parameters:"]
    for p in importlib.import_module(module).PARAMS:
        lines += [f"    # {line}" for line in textwrap.wrap(p.description, 96)]
        lines.append(f"    {p.name}: {value(p.default)}")
    out = Path(__file__).resolve().parent.parent / "molevla_ros" / "config" / f"{name}.yaml"
    out.write_text("\n".join(lines) + "\n")
