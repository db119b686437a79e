"""Where the package's files are (config/, models/, robots/ of a checkout or an install) and which model runs by
default. No ROS here."""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path


def config_dir() -> Path:
    """config/ of a source checkout, else share/molevla_ros/config of the install this module belongs to: found
    through the ament index (colcon installs: AMENT_PREFIX_PATH), else the install prefix above this module
    (PREFIX/lib/pythonX.Y/site-packages/molevla_ros), else Python's own prefix (pip)."""
    here = Path(__file__).resolve().parents[2] / "config"  # a checkout: molevla_ros/src/molevla_ros/paths.py
    if here.is_dir():
        return here
    prefixes = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix

        try:
            prefixes.append(Path(get_package_prefix("molevla_ros")))
        except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset or empty
            pass
    except ImportError:  # a pip install without the ROS wheels' ament index
        pass
    prefixes += [Path(__file__).resolve().parents[4], Path(sys.prefix), Path(sysconfig.get_paths()["data"])]
    for prefix in prefixes:
        p = prefix / "share" / "molevla_ros" / "config"
        if p.is_dir():
            return p
    raise FileNotFoundError("cannot find molevla_ros config/ (a source checkout, or share/molevla_ros/config under "
                            f"one of {', '.join(map(str, prefixes))})")


def robots_dir() -> Path:
    """robots/ (the robot profiles) of a source checkout or of an install (share/molevla_ros/robots)."""
    return config_dir().parent / "robots"


def models_dir() -> Path:
    """models/ of a source checkout or of an install (share/molevla_ros/models)."""
    return config_dir().parent / "models"


# The policy the product runs when nothing else is named: policy node, demo, CLI tools and benchmarks.
DEFAULT_MODEL = "mole_locator"


def resolve_model(path: str) -> Path:
    """An absolute model folder, or a name under models/."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else models_dir() / path
