"""Record scripted-expert episodes to MCAP, one file per episode, with the loop's own topics and types.

Per control step: the policy's camera frame (molevla/image, 224x224 rgb8 as the camera node outputs),
joint_states, and the expert's action chunk (molevla/action_chunk). The goal goes on
molevla/instruction at the start; task, seed and success are MCAP metadata.
"""
from __future__ import annotations

import time
from pathlib import Path

from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from tqdm import tqdm

from molevla_ros.control.chunk_executor import ChunkExecutor
from molevla_ros.inputs.images import resize
from molevla_ros.nodes.common import (TOPIC_CHUNK, TOPIC_IMAGE, TOPIC_INSTRUCTION, TOPIC_JOINT_STATES, TOPIC_SUCCESS,
                                      chunk_to_msg, rgb_to_msg, to_stamp)
from molevla_ros.record.mcap_writer import McapRos2Writer
from molevla_ros.sim.expert import ScriptedExpert
from molevla_ros.sim.rollout import run_episode
from molevla_ros.sim.scene import JOINT_NAMES, FrankaTableSim
from molevla_ros.sim.tasks import sample_task

IMAGE_SIZE = 224
ACTION_DT = 0.1


def record_episode(sim: FrankaTableSim, family: str, seed: int, path: Path, control_hz: float = 5.0,
                   goal: int = 0) -> bool:
    """One expert episode into ``path``; returns success."""
    task = sample_task(family, seed, goal=goal)
    expert = ScriptedExpert()
    t_base = time.time()
    writer = McapRos2Writer(path, {"family": family, "seed": str(seed), "goal": str(goal),
                                   "instruction": task.instruction,
                                   "policy": "scripted_expert", "control_hz": str(control_hz)})
    writer.write("/" + TOPIC_INSTRUCTION, String(data=task.instruction), int(t_base * 1e9))

    def on_step(obs, chunk) -> None:
        t = t_base + obs.stamp
        ns, stamp = int(t * 1e9), to_stamp(t)
        frame = resize(obs.image, IMAGE_SIZE, IMAGE_SIZE)
        writer.write("/" + TOPIC_IMAGE, rgb_to_msg(frame, stamp, "scene_camera"), ns)
        js = JointState(name=JOINT_NAMES, position=obs.joint_positions.tolist())
        js.header.stamp = stamp
        writer.write("/" + TOPIC_JOINT_STATES, js, ns)
        writer.write("/" + TOPIC_CHUNK, chunk_to_msg(chunk, stamp, "panda_link0", ACTION_DT), ns)

    result = run_episode(sim, task, lambda o: expert.act(o.instruction, o.privileged), ChunkExecutor(),
                         control_hz=control_hz, with_images=True, on_step=on_step)
    end_ns = int((t_base + result.seconds) * 1e9)
    writer.write("/" + TOPIC_SUCCESS, Bool(data=result.success), end_ns)
    writer.close({"success": str(result.success).lower(), "seconds": f"{result.seconds:.2f}",
                  "control_steps": str(result.control_steps)})
    return result.success


def collect(out: Path, families: list[str], episodes: int, seed: int = 0, goals: int = 1) -> None:
    """`episodes` layouts per family, each recorded with `goals` different goal cubes (files
    family_SEED.mcap for the seed's own goal, family_SEED_gN.mcap for the others). Resumable: episodes
    whose file exists are kept (files are written under a temporary name and renamed when complete)."""
    out.mkdir(parents=True, exist_ok=True)
    sim = FrankaTableSim()
    ok = total = 0
    try:
        with tqdm(total=episodes * len(families) * goals, unit="ep", desc="collecting") as bar:
            for family in families:
                for s in range(seed, seed + episodes):
                    for g in range(goals):
                        name = f"{family}_{s:05d}" + (f"_g{g}" if g else "")
                        path = out / f"{name}.mcap"
                        if not path.exists():
                            part = path.with_suffix(".part")
                            ok += record_episode(sim, family, s, part, goal=g)
                            part.rename(path)
                            total += 1
                        bar.set_postfix(success=f"{ok}/{total}")
                        bar.update()
    finally:
        sim.close()
    print(f"recorded {total} new episodes ({ok} successful) to {out}/")
