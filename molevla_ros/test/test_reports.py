"""Conclusions in generated reports follow the numbers they sit beside."""
from molevla_ros.bench.evaluate import speed_summary


def _row(mflops: float, backbone_ms: float, step_ms: float) -> dict:
    return {"backbone_mflops_per_step": mflops, "backbone_ms_p50": backbone_ms, "latency_ms_p50": step_ms}


def test_speed_summary_says_what_the_numbers_say():
    head_bound = speed_summary(_row(250, 12.0, 24.0), _row(125, 10.0, 23.5))
    assert "2.00x less" in head_bound and "barely changes" in head_bound and "50% of a full-depth step" in head_bound
    backbone_bound = speed_summary(_row(900, 90.0, 100.0), _row(450, 45.0, 55.0))
    assert "shortens the whole step by 45%" in backbone_bound and "barely" not in backbone_bound


def test_wording_column_shows_canonical_and_held_out_success_side_by_side():
    from molevla_ros.bench.evaluate import episode_task, print_table
    from molevla_ros.sim.tasks import is_goal_of, sample_task

    canonical, held_out = episode_task("push", 1003, "canonical"), episode_task("push", 1003, "held-out")
    assert canonical == sample_task("push", 1003)
    assert held_out.instruction != canonical.instruction and held_out.cubes == canonical.cubes
    assert is_goal_of(held_out.instruction, held_out)  # the simulator judges it as the same task
    row = {"name": "m", "success": {"touch": 0.9}, "mean_success": 0.9, "layers_kept_mean": 4, "layers": 8,
           "backbone_mflops_per_step": 1, "backbone_ms_p50": 1, "latency_ms_p50": 1, "latency_ms_p99": 2,
           "success_by_wording": {"canonical": {"touch": 0.9}, "held-out": {"touch": 0.55}}}
    table = print_table([row], ["touch"], 20)
    assert "canonical / held-out" in table and "| m | 90% / 55% | 90.0% / 55.0% |" in table


def test_an_episodes_diffusion_noise_is_its_seeds_whatever_ran_before(monkeypatch):
    """The same episode (seed, goal as read) gets the same chunks in any run: alone, after other episodes, in another
    wording's pass. Each episode here is the real policy on the real first observation, stepped 1-3 times."""
    from types import SimpleNamespace

    import numpy as np

    from molevla_ros.bench import evaluate
    from molevla_ros.paths import DEFAULT_MODEL, resolve_model
    from molevla_ros.sim.rollout import observe

    first_chunks = []

    def episode(sim, task, policy, *args, **kwargs):
        sim.reset(task)
        obs = observe(sim, task.instruction, True)
        chunks = [policy(obs) for _ in range(1 + len(task.instruction) % 3)]
        first_chunks.append(chunks[0])
        return SimpleNamespace(success=True)

    monkeypatch.setattr(evaluate, "run_episode", episode)
    v = evaluate.Variant("m", str(resolve_model(DEFAULT_MODEL)), "mole", None)
    run = evaluate.evaluate_variant(v, ["touch", "push"], 4, 1000, wordings=("canonical", "held-out"))
    assert run["goals_refused_by_wording"] == {"canonical": 0, "held-out": 0}
    canonical, held_out = first_chunks[:8], first_chunks[8:]
    evaluate.evaluate_variant(v, ["push"], 1, 1002, wordings=("held-out",))
    for a, b in zip(canonical, held_out):  # every held-out goal is read as its canonical goal: the same episode
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(first_chunks[-1], canonical[6], atol=1e-5)  # push, seed 1002, alone
    assert np.abs(canonical[6] - canonical[7]).max() > 1e-3  # (episodes differ: the check can fail)


def test_bench_keep_runs_the_executor_and_policy_rate_it_is_given(monkeypatch, tmp_path):
    """`molevla bench-keep --blend latest --control-hz 10` reaches the episode loop: the executor blends as asked, the
    policy steps at the asked rate, and the table says which settings it ran with."""
    from types import SimpleNamespace

    from molevla_ros.bench import evaluate, keep_sweep
    from molevla_ros.sim.rollout import observe

    seen = []

    def episode(sim, task, policy, executor, **kwargs):
        seen.append((executor.blend, kwargs["control_hz"]))
        sim.reset(task)
        policy(observe(sim, task.instruction, True))  # one real step: the table reports its latency
        return SimpleNamespace(success=False)

    monkeypatch.setattr(evaluate, "run_episode", episode)
    keep_sweep.run(keep_sweep.KeepSweepOptions(keeps=(4,), tasks=("push",), episodes=2, blend="latest",
                                               control_hz=10.0, out=str(tmp_path)))
    assert seen == [("latest", 10.0)] * 2
    assert "10 policy steps/s, blend latest" in (tmp_path / "table.md").read_text()
