import itertools
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ros_harness import RosTestSession  # noqa: E402

# A private ROS domain per test (and per pytest process) so parallel runs never hear each other.
_domains = itertools.count(100 + (os.getpid() % 50) * 2)


@pytest.fixture
def ros(tmp_path):
    """ros(nodes, overrides) -> a RosTestSession context manager; node logs land in tmp_path."""

    def make(nodes, overrides=None):
        return RosTestSession(nodes, next(_domains) % 200 + 1, overrides, log_dir=tmp_path)

    return make
