"""Conclusions in generated reports follow the numbers they sit beside."""
from molevla_ros.bench.eval_policies import speed_summary


def _row(mflops: float, backbone_ms: float, step_ms: float) -> dict:
    return {"backbone_mflops_per_step": mflops, "backbone_ms_p50": backbone_ms, "latency_ms_p50": step_ms}


def test_speed_summary_says_what_the_numbers_say():
    head_bound = speed_summary(_row(250, 12.0, 24.0), _row(125, 10.0, 23.5))
    assert "2.00x less" in head_bound and "barely changes" in head_bound and "50% of a full-depth step" in head_bound
    backbone_bound = speed_summary(_row(900, 90.0, 100.0), _row(450, 45.0, 55.0))
    assert "shortens the whole step by 45%" in backbone_bound and "barely" not in backbone_bound
