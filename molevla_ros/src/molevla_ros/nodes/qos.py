"""QoS profiles of the molevla topics."""
from __future__ import annotations

from rclpy.duration import Duration as RclpyDuration
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

SENSOR_QOS = qos_profile_sensor_data  # best effort: matches reliable and best-effort publishers
RELIABLE_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Status: latched, so a late subscriber (`ros2 topic echo molevla/status`) gets each node's last messages at once;
# 10 deep so that a burst is not overwritten before a reliable reader has it.
STATUS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def chunk_qos(liveliness_s: float) -> QoSProfile:
    """Action-chunk QoS. With a lease (> 0) on both sides the executor learns within about that time that
    the policy process died (DDS liveliness), long before its chunks would run out. A subscriber asking
    for a lease only matches publishers that offer one at least as short: publish chunks with CHUNK_PUB_QOS.
    """
    if liveliness_s <= 0:
        return QoSProfile(depth=5)
    return QoSProfile(depth=5, liveliness=LivelinessPolicy.AUTOMATIC,
                      liveliness_lease_duration=RclpyDuration(seconds=liveliness_s))


CHUNK_PUB_QOS = chunk_qos(0.05)  # what the policy offers by default (its liveliness_s)
