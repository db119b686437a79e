"""What a model folder says about running it, as node parameters for the launch (json only: no torch, no rclpy).

From config.json: the camera's resize filter (vision.resize: the filter the model was made with) and the `deploy`
hints (policy control_hz, executor blend and ensemble_window: CogACT predicts once per executed action and blends
the last 7 or 2 predictions). From stats.json and action_dt: the fastest step the model can ask for (its outputs
are clipped to the action range), which the executor accepts as plausible; it still clamps to the robot profile's
speed limits.

Precedence at launch: config/*.yaml < these hints < a params_file < launch arguments (or `molevla launch --set`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# The model's fastest step is a bound on what a working model sends; a rotation's Euler deltas and its rotation
# vector differ in norm (up to ~1.2x at 0.5 rad), hence the margin.
SPEED_MARGIN = 1.25


def model_speeds(low: list[float], high: list[float], action_dt: float) -> tuple[float, float]:
    """(linear m/s, angular rad/s) of the largest step the action range allows, times SPEED_MARGIN."""
    step = np.maximum(np.abs(np.asarray(low, float)), np.abs(np.asarray(high, float)))
    return (round(SPEED_MARGIN * float(np.linalg.norm(step[:3])) / action_dt, 4),
            round(SPEED_MARGIN * float(np.linalg.norm(step[3:6])) / action_dt, 4))


def hints(model_dir: Path) -> dict[str, dict[str, object]]:
    """Node -> {parameter: value} the model folder asks for; {} where it is not a model folder (e.g. the scripted
    expert's bring-up)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        return {}
    cfg = json.loads((model_dir / "config.json").read_text())
    out: dict[str, dict[str, object]] = {"camera": {"resize": cfg["vision"].get("resize", "bilinear")},
                                         "policy": {}, "executor": {}}
    deploy = cfg.get("deploy", {})
    if deploy.get("control_hz"):
        out["policy"]["control_hz"] = float(deploy["control_hz"])
    if deploy.get("blend"):
        out["executor"]["blend"] = deploy["blend"]
    if deploy.get("ensemble_window"):
        out["executor"]["ensemble_window"] = int(deploy["ensemble_window"])
    stats = model_dir / "stats.json"
    if stats.is_file():
        s = json.loads(stats.read_text())
        if "action_low" in s and "action_high" in s:
            lin, ang = model_speeds(s["action_low"], s["action_high"], float(cfg["action_dt"]))
            out["executor"].update(model_linear_speed=lin, model_angular_speed=ang)
    return out
