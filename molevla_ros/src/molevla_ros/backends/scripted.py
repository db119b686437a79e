"""The scripted expert as a policy backend. It reads simulator ground truth: it is not a learned policy."""
from __future__ import annotations

from molevla_ros.backends.base import Observation, PolicyOutput
from molevla_ros.sim.expert import ScriptedExpert


class ScriptedExpertBackend:
    name = "scripted_expert"
    needs_privileged_state = True
    action_dt = ScriptedExpert.action_dt
    note = "scripted expert reading simulator ground truth: not a learned policy"
    image_size = None  # it reads no image

    def __init__(self, horizon: int = 16) -> None:
        self.expert = ScriptedExpert(horizon)

    def reset(self) -> None:
        pass

    def act(self, obs: Observation) -> PolicyOutput:
        if obs.privileged is None:
            raise RuntimeError("the scripted expert needs the simulator's privileged state (sim/privileged_state); "
                               "it cannot drive a real robot")
        return PolicyOutput(self.expert.act(obs.instruction, obs.privileged))
