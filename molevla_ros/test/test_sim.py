import numpy as np
import pytest

from molevla_ros.sim.expert import ScriptedExpert
from molevla_ros.sim.rollout import run_episode, sim_executor
from molevla_ros.sim.scene import FrankaTableSim
from molevla_ros.model.language import FAMILIES, instruction_for, parse_instruction
from molevla_ros.sim.tasks import COLOURS, Task, is_goal_of, sample_task


@pytest.fixture(scope="module")
def sim():
    s = FrankaTableSim()
    yield s
    s.close()


def test_layouts_are_seeded_and_goals_parse():
    for family in FAMILIES:
        for seed in range(20):
            t = sample_task(family, seed)
            assert t == sample_task(family, seed)
            assert parse_instruction(t.instruction) == (family, t.cube, t.target)
            assert t.cube in t.cubes
    assert sample_task("push", 1) != sample_task("push", 2)
    assert parse_instruction("dance the robot") is None
    assert parse_instruction("touch the purple cube") is None
    assert parse_instruction("Push the RED block onto the blue circle.") == ("push", "red", "blue")


def test_success_is_judged_only_for_goals_naming_the_task():
    push = Task("push", "push the red cube to the blue target", "red", "blue")
    assert is_goal_of("Could you shove the RED block onto the blue disc, please?", push)
    assert not is_goal_of("push the blue cube to the red target", push)  # order matters
    same = Task("push", "", "red", "red")  # the target disc can have the cube's colour
    assert is_goal_of("push the red cube to the red target", same)
    assert not is_goal_of("push the red cube", push) and not is_goal_of("push the red cube to the green target", push)
    touch = Task("touch", "touch the red cube", "red")
    assert is_goal_of("tap the red one", touch) and not is_goal_of("touch the green cube", touch)
    assert not is_goal_of("", touch) and not is_goal_of("touch the red and the green cube", touch)
    for c in COLOURS:
        assert parse_instruction(instruction_for("pick_place", c)) == ("pick_place", c, None)


@pytest.mark.parametrize("family", FAMILIES)
def test_goal_variants_share_the_layout(family):
    """goal=N keeps the seed's cubes and changes only which one the instruction names (goal 0 = default)."""
    base = sample_task(family, 3)
    assert sample_task(family, 3, goal=0) == base
    goals = [sample_task(family, 3, goal=g) for g in range(3)]
    assert len({t.cube for t in goals}) == 3 and all(t.cubes == base.cubes for t in goals)
    assert all(parse_instruction(t.instruction)[1] == t.cube for t in goals)
    with pytest.raises(ValueError):
        sample_task(family, 3, goal=3)


@pytest.mark.parametrize("family", FAMILIES)
def test_success_detection(sim, family):
    """Success is false after reset and while the arm idles; the expert reaches it; a wrong cube does not count."""
    task = sample_task(family, 7)
    sim.reset(task)
    assert not sim.success()
    sim.advance(1.0)
    assert not sim.success(), "an idle arm must not succeed"
    expert = ScriptedExpert()
    r = run_episode(sim, task, lambda o: expert.act(o.instruction, o.privileged), sim_executor(0.1))
    assert r.success and r.seconds < 25
    # The same motions aimed at another cube must not satisfy this task.
    other = next(c for c in task.cubes if c != task.cube)
    wrong = task.instruction.replace(f"the {task.cube} cube", f"the {other} cube")
    r = run_episode(sim, task, lambda o: expert.act(wrong, o.privileged), sim_executor(0.1), max_seconds=12)
    assert not r.success


def test_twist_moves_end_effector(sim):
    sim.reset(sample_task("touch", 0))
    p0, _ = sim.ee_pose()
    sim.command_twist(np.array([0.1, 0.0, 0.0]), np.zeros(3))
    sim.advance(1.0)
    p1, _ = sim.ee_pose()
    assert p1[0] - p0[0] == pytest.approx(0.1, abs=0.015) and abs(p1[1] - p0[1]) < 0.01
    sim.command_twist(np.zeros(3), np.zeros(3))
    sim.advance(0.3)
    p2, _ = sim.ee_pose()
    sim.advance(0.5)
    assert np.linalg.norm(sim.ee_pose()[0] - p2) < 0.002, "zero twist holds position"


def test_render(sim):
    sim.reset(sample_task("push", 0))
    img = sim.render()
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8 and img.std() > 5


def test_camera_model_matches_the_renderer(sim):
    """K and the optical pose (what camera_info and TF publish) put each cube where the renderer draws it."""
    import pybullet as pb

    from molevla_ros.sim.camera_model import intrinsics, optical_pose, project, quaternion_xyzw

    cfg = sim.cfg
    k = intrinsics(cfg.image_width, cfg.image_height, cfg.camera_fov_deg)
    position, rotation = optical_pose(cfg.camera_eye, cfg.camera_target)
    q = quaternion_xyzw(rotation)
    np.testing.assert_allclose(pb.getMatrixFromQuaternion(q.tolist()), rotation.reshape(-1), atol=1e-9)
    for family, seed in (("push", 3), ("pick_place", 7)):
        sim.reset(sample_task(family, seed))
        seg = np.asarray(pb.getCameraImage(cfg.image_width, cfg.image_height, sim._view, sim._proj, shadow=0,
                                           renderer=pb.ER_TINY_RENDERER, physicsClientId=sim.client)[4])
        seg = seg.reshape(cfg.image_height, cfg.image_width)
        for name, body in sim._objects.items():
            if not name.endswith("_cube"):
                continue
            rows, cols = np.nonzero(seg == body)
            assert rows.size > 10, f"{name} not visible"
            centre = project(k, position, rotation, sim.object_poses()[name][0][None])[0]
            assert np.hypot(cols.mean() - centre[0], rows.mean() - centre[1]) < 2.5, (name, centre, cols.mean())


def test_push_outcomes_are_classified_from_where_the_cube_ends(sim):
    import pybullet as pb

    from molevla_ros.bench.push_outcomes import classify

    task = sample_task("push", 1000)
    sim.reset(task)
    assert classify(sim, task, False)[0] == "cube never moved"
    start, goal = np.array(task.cubes[task.cube][:2]), np.array(task.targets[task.target])
    u = (goal - start) / np.linalg.norm(goal - start)
    for offset, expected in ((0.5 * (goal - start), "stopped short"), (goal - start + 0.08 * u, "overshoot"),
                             (0.5 * (goal - start) + 0.08 * np.array([-u[1], u[0]]), "sideways")):
        sim.reset(task)
        cube = sim._objects[f"{task.cube}_cube"]  # move the cube where a push would have left it
        pos, orn = pb.getBasePositionAndOrientation(cube, physicsClientId=sim.client)
        pb.resetBasePositionAndOrientation(cube, [*(start + offset), pos[2]], orn, physicsClientId=sim.client)
        assert classify(sim, task, False)[0] == expected, expected
