"""Record scripted-expert episodes to MCAP, one file per episode, with the loop's own topics and types.

Per control step: the policy's camera frame (molevla/image, 224x224 rgb8 as the camera node outputs),
joint_states, the expert's action chunk (molevla/action_chunk), and the simulator's ground truth
(sim/privileged_state: object and end-effector positions, for training-only targets such as `--geometry-weight`;
no model input). The goal goes on
molevla/instruction at the start; task, seed and success are MCAP metadata.

With a driver (DAgger, Ross et al. 2011), a trained policy moves the arm instead of the expert (the expert
still drives a fraction ``beta`` of the control steps), and the expert's chunk for every state the policy
reached is recorded as the label: the data then cover the states the policy itself gets into, which
expert-only demonstrations never show it.

With ``noise`` (DART, Laskey et al. 2017), the expert drives but each executed chunk is offset by a random
velocity (the labels stay the expert's clean chunks): the arm drifts off the expert's path the way a learned
policy does, and the labels show how to get back. Unlike DAgger it needs no trained model.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from tqdm import tqdm

from molevla_ros.backends.base import Observation
from molevla_ros.config_cli import option
from molevla_ros.inputs.images import resize
from molevla_ros.nodes.messages import chunk_to_msg, rgb_to_msg, to_stamp
from molevla_ros.topics import TOPIC_CHUNK, TOPIC_IMAGE, TOPIC_INSTRUCTION, TOPIC_SIM_STATE, TOPIC_SUCCESS
from molevla_ros.record.mcap_writer import McapRos2Writer
from molevla_ros.sim.expert import ScriptedExpert, offset_chunk
from molevla_ros.sim.ground_truth import state_markers
from molevla_ros.sim.rollout import run_episode, sim_executor
from molevla_ros.sim.scene import CAMERA, JOINT_NAMES, SIM_ROBOT, FrankaTableSim
from molevla_ros.model.language import FAMILIES
from molevla_ros.sim.tasks import sample_task

IMAGE_SIZE = 224


Driver = Callable[[Observation], np.ndarray]


def record_episode(sim: FrankaTableSim, family: str, seed: int, path: Path, control_hz: float = 5.0,
                   goal: int = 0, driver: Driver | None = None, beta: float = 0.0, driver_name: str = "",
                   noise: float = 0.0) -> bool:
    """One episode into ``path``, labelled by the expert; driven by the expert (its chunks offset by N(0,
    ``noise``) metres per action step in xyz, one draw per chunk), or by ``driver`` on a fraction 1 - ``beta``
    of the control steps. Returns success."""
    task = sample_task(family, seed, goal=goal)
    expert = ScriptedExpert()
    rng = np.random.default_rng(seed * 3 + goal)
    t_base = time.time()
    policy = f"dagger: {driver_name}, expert share {beta:g}" if driver else (
        f"scripted_expert + noise {noise:g}" if noise else "scripted_expert")
    writer = McapRos2Writer(path, {"family": family, "seed": str(seed), "goal": str(goal),
                                   "instruction": task.instruction, "policy": policy, "labels": "scripted_expert",
                                   "control_hz": str(control_hz)})
    writer.write("/" + TOPIC_INSTRUCTION, String(data=task.instruction), int(t_base * 1e9))

    current: dict[str, np.ndarray] = {}  # this control step's camera-node frame and expert label

    def act(obs: Observation) -> np.ndarray:
        current["frame"] = resize(obs.images[CAMERA], IMAGE_SIZE, IMAGE_SIZE)
        current["label"] = expert.act(obs.instruction, obs.privileged)
        if driver is None:
            return offset_chunk(current["label"], noise, rng)
        if rng.random() < beta:
            return current["label"]
        return driver(replace(obs, images={CAMERA: current["frame"]}, privileged=None))

    def on_step(obs, _executed) -> None:
        t = t_base + obs.stamp
        ns, stamp = int(t * 1e9), to_stamp(t)
        frame = current["frame"]
        writer.write("/" + TOPIC_IMAGE, rgb_to_msg(frame, stamp, "scene_camera"), ns)
        js = JointState(name=JOINT_NAMES, position=[obs.state[n] for n in JOINT_NAMES])
        js.header.stamp = stamp
        writer.write("/" + SIM_ROBOT.joint_states, js, ns)
        writer.write("/" + TOPIC_CHUNK,
                     chunk_to_msg(current["label"], stamp, SIM_ROBOT.base_frame, expert.action_dt), ns)
        writer.write("/" + TOPIC_SIM_STATE, state_markers(sim, stamp), ns)  # the simulator has not moved since obs

    result = run_episode(sim, task, act, sim_executor(expert.action_dt), control_hz=control_hz, with_images=True,
                         on_step=on_step)
    end_ns = int((t_base + result.seconds) * 1e9)
    writer.write("/" + TOPIC_SUCCESS, Bool(data=result.success), end_ns)
    writer.close({"success": str(result.success).lower(), "seconds": f"{result.seconds:.2f}",
                  "control_steps": str(result.control_steps)})
    return result.success


def record_bag_episode(sim: FrankaTableSim, family: str, seed: int, path: Path, goal: int = 0, noise: float = 0.0,
                       camera_hz: float = 10.0, control_hz: float = 5.0) -> bool:
    """One expert-driven episode recorded the way `ros2 bag record` records a real robot: the camera driver's
    image_raw (the simulator's full frame) at ``camera_hz``, joint_states at every 50 Hz command tick, and the goal on
    molevla/instruction; no action chunks, no ground truth. Returns success."""
    from molevla_ros.dataset.from_bags import SUCCESS_KEY
    from molevla_ros.record.bag_writer import Rosbag2Writer

    task = sample_task(family, seed, goal=goal)
    expert = ScriptedExpert()
    rng = np.random.default_rng(seed * 3 + goal)
    t_base = time.time()
    next_frame = [0.0]
    with Rosbag2Writer(path) as bag:
        bag.write("/" + TOPIC_INSTRUCTION, String(data=task.instruction), int(t_base * 1e9))

        def on_tick(now: float) -> None:
            t = t_base + now
            ns, stamp = int(t * 1e9), to_stamp(t)
            names, q, _ = sim.joint_state()
            js = JointState(name=list(names), position=[float(v) for v in q])
            js.header.stamp = stamp
            bag.write("/" + SIM_ROBOT.joint_states, js, ns)
            if now >= next_frame[0] - 1e-6:
                bag.write("/image_raw", rgb_to_msg(sim.render(), stamp, "scene_camera"), ns)
                next_frame[0] += 1.0 / camera_hz

        result = run_episode(sim, task, lambda obs: offset_chunk(expert.act(obs.instruction, obs.privileged), noise,
                                                                  rng),
                             sim_executor(expert.action_dt), control_hz=control_hz, with_images=False,
                             on_tick=on_tick)
        bag.set_custom(SUCCESS_KEY, str(result.success).lower())  # failed demonstrations are not converted
    return result.success


def model_driver(model_dir: str, route: str = "full", seed: int = 0) -> Driver:
    """A trained MoLe-VLA (mole_torch backend) as an episode driver for DAgger collection."""
    from molevla_ros.backends.registry import make_backend

    backend = make_backend("mole_torch", model_dir=model_dir, route=route)
    backend.seed = seed
    backend.reset()
    return lambda obs: backend.act(obs).chunk


@dataclass
class CollectOptions:
    out: str = option("data/episodes", "episode folder")
    tasks: tuple[str, ...] = option(FAMILIES, "task families", choices=FAMILIES)
    episodes: int = option(20, "layouts per task family")
    seed: int = option(0, "first layout seed")
    goals: int = option(1, "goals per layout (1-3): same scene, different cube")
    driver: str | None = option(None, "DAgger: a model folder that drives the arm while the expert labels")
    route: str = option("full", "the driver's layer routing (full, mole, ...)")
    beta: float = option(0.3, "DAgger: share of control steps the expert drives")
    noise: float = option(0.0, "DART: std of a per-chunk xyz offset on the expert's executed actions (m per "
                          "action step; labels stay clean)")
    format: str = option("mcap", "mcap: one file per episode with the loop's own topics, the expert's chunks as "
                         "labels and the simulator's ground truth (what `molevla train` reads directly); bag: one "
                         "rosbag2 folder per episode with only what a real robot's recording holds (image_raw at "
                         "--camera-hz, joint_states at 50 Hz, the goal), for `molevla dataset from-bags`; expert-"
                         "driven only", choices=("mcap", "bag"))
    camera_hz: float = option(10.0, "--format bag: camera frames per second")


def collect(o: CollectOptions) -> None:
    """`episodes` layouts per family, each recorded with `goals` different goal cubes (files
    family_SEED.mcap for the seed's own goal, family_SEED_gN.mcap for the others). Resumable: episodes
    whose file exists are kept (files are written under a temporary name and renamed when complete).
    With ``driver`` (a model folder), the model drives and the expert labels (DAgger, see above)."""
    out, families, episodes, seed, goals, driver, route, beta = (Path(o.out), o.tasks, o.episodes, o.seed, o.goals,
                                                                 o.driver, o.route, o.beta)
    if driver and o.noise:
        raise ValueError("--noise perturbs the expert's own driving; it does not combine with --driver")
    if driver and o.format == "bag":
        raise ValueError("--format bag records the expert's own driving (what a teleoperated demonstration is)")
    out.mkdir(parents=True, exist_ok=True)
    drive = model_driver(driver, route, seed) if driver else None
    sim = FrankaTableSim()
    ok = total = 0
    try:
        with tqdm(total=episodes * len(families) * goals, unit="ep", desc="collecting") as bar:
            for family in families:
                for s in range(seed, seed + episodes):
                    for g in range(goals):
                        name = f"{family}_{s:05d}" + (f"_g{g}" if g else "")
                        path = out / (f"{name}.mcap" if o.format == "mcap" else name)
                        if not path.exists():
                            if o.format == "bag":  # the storage file takes the folder's name: record it as such
                                part = out / ".recording" / name
                                shutil.rmtree(part, ignore_errors=True)
                                part.parent.mkdir(exist_ok=True)
                                ok += record_bag_episode(sim, family, s, part, goal=g, noise=o.noise,
                                                         camera_hz=o.camera_hz)
                            else:
                                part = path.with_name(path.name + ".part")
                                ok += record_episode(sim, family, s, part, goal=g, driver=drive, beta=beta,
                                                     driver_name=f"{driver} ({route})", noise=o.noise)
                            part.rename(path)
                            total += 1
                        bar.set_postfix(success=f"{ok}/{total}")
                        bar.update()
    finally:
        sim.close()
    print(f"recorded {total} new episodes ({ok} successful) to {out}/")
