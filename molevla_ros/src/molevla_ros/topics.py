"""Default topic names of the molevla nodes, all relative (namespaces and remapping apply) except /diagnostics. No ROS
here: training, recording and tools name topics without importing rclpy."""
from __future__ import annotations

# Default topic names: all relative, so namespaces and remapping apply.
TOPIC_IMAGE_RAW = "image_raw"
TOPIC_IMAGE = "molevla/image"
TOPIC_INSTRUCTION = "molevla/instruction"
TOPIC_GOAL = "molevla/goal"
TOPIC_STATUS = "molevla/status"
TOPIC_CHUNK = "molevla/action_chunk"
TOPIC_PLAN = "molevla/executor_plan"  # what the executor will ask for next (real-time chunking)
TOPIC_LAYER_MASK = "molevla/layer_mask"
TOPIC_POLICY_STATS = "molevla/policy_stats"
TOPIC_ESTOP = "molevla/estop"
TOPIC_SUCCESS = "molevla/task_success"
TOPIC_SIM_TASK = "sim/task"
TOPIC_SIM_STATE = "sim/privileged_state"
TOPIC_DIAGNOSTICS = "/diagnostics"  # absolute: the diagnostic aggregator's standard topic


def image_topic(source: str) -> str:
    """The frame topic of an image_source."""
    return TOPIC_IMAGE_RAW if source == "raw" else TOPIC_IMAGE
