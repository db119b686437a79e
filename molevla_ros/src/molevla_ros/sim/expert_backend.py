"""The scripted expert as a policy backend (backend name scripted_expert). It reads the simulator's ground truth: it
is not a learned policy and cannot drive a real robot. Lives with the simulator; the backend registry names it."""
from __future__ import annotations

from typing import Any

from molevla_ros.backends.base import Observation, PolicyOutput
from molevla_ros.sim.expert import ScriptedExpert


class ScriptedExpertBackend:
    name = "scripted_expert"
    needs_privileged_state = True
    action_dt = ScriptedExpert.action_dt
    note = "scripted expert reading simulator ground truth: not a learned policy"
    image_size = None  # it reads no image
    resize = "bilinear"
    camera = "main"
    state_joints: tuple[str, ...] = ()  # it reads the ground truth, not the joint state
    familiarity = None  # it parses goals itself
    layers, keep = 0, None  # nothing to route

    def __init__(self, horizon: int = 16) -> None:
        self.expert = ScriptedExpert(horizon)

    def reset(self) -> None:
        pass

    def act_batch(self, observations: list[Observation]) -> list[PolicyOutput]:
        return [self.act(o) for o in observations]

    def act(self, obs: Observation) -> PolicyOutput:
        if obs.privileged is None:
            raise RuntimeError("the scripted expert needs the simulator's privileged state (sim/privileged_state); "
                               "it cannot drive a real robot")
        return PolicyOutput(self.expert.act(obs.instruction, obs.privileged))

    def privileged_feed(self, node: Any, prefix: str) -> Any:
        """The simulator's ground truth on `node` (sim/privileged_state under the robot's prefix)."""
        from molevla_ros.sim.ground_truth import SimGroundTruth

        return SimGroundTruth(node, prefix)
