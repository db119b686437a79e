"""Goal geometry targets (train/geometry.py) from object positions."""
import numpy as np

from molevla_ros.sim.expert import push_start
from molevla_ros.train.geometry import goal_points, normalise

OBJECTS = {"red_cube": np.array([0.5, 0.1, 0.02]), "blue_cube": np.array([0.4, -0.1, 0.02]),
           "green_target": np.array([0.6, -0.2, 0.0]), "tray": np.array([0.45, 0.25, 0.0])}


def test_push_points_are_the_named_cube_target_and_the_point_behind_the_cube():
    points = goal_points("push the red cube to the green target", OBJECTS)
    np.testing.assert_allclose(points[0], [0.5, 0.1])
    np.testing.assert_allclose(points[1], [0.6, -0.2])
    np.testing.assert_allclose(points[2], push_start(np.array([0.5, 0.1]), np.array([0.6, -0.2])), atol=1e-6)
    assert np.linalg.norm(points[2] - points[1]) > np.linalg.norm(points[0] - points[1])  # behind, away from goal


def test_other_families_leave_undefined_points_nan():
    touch = goal_points("touch the blue cube", OBJECTS)
    np.testing.assert_allclose(touch[0], [0.4, -0.1])
    assert np.isnan(touch[1:]).all()
    pick = goal_points("pick up the red cube and put it in the tray", OBJECTS)
    np.testing.assert_allclose(pick[:2], [[0.5, 0.1], [0.45, 0.25]])
    assert np.isnan(pick[2]).all()
    assert np.isnan(goal_points("dance", OBJECTS)).all()


def test_normalised_table_coordinates_are_about_unit_scale():
    out = normalise(goal_points("push the red cube to the green target", OBJECTS))
    assert np.abs(out).max() <= 1.5
