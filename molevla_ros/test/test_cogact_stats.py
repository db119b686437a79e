"""A CogACT release's dataset_statistics.json -> the model's action range (every entry, both bounds, the mask)."""
import numpy as np
import pytest

from molevla_ros.model.cogact_stats import action_range

Q01 = [-0.031, -0.042, -0.053, -0.11, -0.12, -0.13, 0.0]
Q99 = [0.034, 0.045, 0.056, 0.14, 0.15, 0.16, 1.0]


def stats(**action):
    return {"bridge_orig": {"action": {"q01": Q01, "q99": Q99, "mask": [True] * 6 + [False], **action}}}


def test_every_bound_is_read_as_given_and_masked_dimensions_stay_unscaled():
    key, low, high = action_range(stats(), None)
    assert key == "bridge_orig"
    np.testing.assert_allclose(low.numpy(), Q01[:6] + [-1.0], rtol=1e-6)
    np.testing.assert_allclose(high.numpy(), Q99[:6] + [1.0], rtol=1e-6)
    _, low, high = action_range(stats(mask=[True] * 7), "bridge_orig")
    np.testing.assert_allclose(low.numpy(), Q01, rtol=1e-6)
    np.testing.assert_allclose(high.numpy(), Q99, rtol=1e-6)
    _, low, high = action_range(stats(mask=[False] * 7), None)
    assert low.tolist() == [-1.0] * 7 and high.tolist() == [1.0] * 7


def test_no_mask_means_every_dimension_is_scaled():
    s = stats()
    del s["bridge_orig"]["action"]["mask"]
    _, low, high = action_range(s, None)
    np.testing.assert_allclose(low.numpy(), Q01, rtol=1e-6)
    np.testing.assert_allclose(high.numpy(), Q99, rtol=1e-6)


def test_the_named_dataset_is_used_and_an_ambiguous_choice_refused():
    two = {**stats(), "fractal20220817_data": {"action": {"q01": [-1.0] * 7, "q99": [2.0] * 7}}}
    key, low, high = action_range(two, "fractal20220817_data")
    assert key == "fractal20220817_data" and low.tolist() == [-1.0] * 7 and high.tolist() == [2.0] * 7
    with pytest.raises(ValueError, match="statistics for 2 datasets: pick one with unnorm_key "
                                         r"\(bridge_orig, fractal20220817_data\)"):
        action_range(two, None)
    with pytest.raises(ValueError, match="'nope' not in dataset_statistics.json"):
        action_range(two, "nope")


@pytest.mark.parametrize("action,why", [
    ({"q99": Q99[:6]}, "have 7, 6 and 7 entries"), ({"mask": [True] * 6}, "have 7, 7 and 6 entries"),
    ({"q01": [float("nan")] + Q01[1:]}, "not all finite"), ({"q99": Q99[:6] + [float("inf")]}, "not all finite"),
    ({"q01": Q99, "q99": Q01}, r"q01 > q99 in dimensions \[0, 1, 2, 3, 4, 5\]")])
def test_malformed_statistics_are_refused(action, why):
    with pytest.raises(ValueError, match=why):
        action_range(stats(**action), None)


def test_reversed_bounds_of_an_unscaled_dimension_do_not_matter():
    _, low, high = action_range(stats(q01=Q01[:6] + [1.0], q99=Q99[:6] + [0.0]), None)
    assert (low[6], high[6]) == (-1.0, 1.0)
