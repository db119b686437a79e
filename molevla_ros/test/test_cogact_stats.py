"""A CogACT release's dataset_statistics.json -> the model's action range (every entry, both bounds, the mask)."""
import numpy as np
import pytest
import torch

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


def test_an_unknown_dataset_is_refused_with_the_available_ones_listed():
    two = {"fractal20220817_data": stats()["bridge_orig"], **stats()}
    with pytest.raises(ValueError) as refused:
        action_range(two, "nope")
    assert str(refused.value) == "unnorm_key 'nope' not in dataset_statistics.json (bridge_orig, fractal20220817_data)"


# values whose float32 rounding lies above (0.1, 0.3, 0.034, -0.7) and below (0.7, -0.1) the float64 value
CONSTANT = [0.1, 0.7, 0.3, 0.034, -0.1, -0.7, 1.0]


def test_a_constant_dimension_with_equal_bounds_is_accepted():
    """q01 == q99 (a dimension the dataset never varied) is not reversed: every such dimension is accepted and both
    bounds are the given value (as float32)."""
    _, low, high = action_range(stats(q01=CONSTANT, q99=CONSTANT, mask=[True] * 7), None)
    assert low.dtype == high.dtype == torch.float32
    assert low.tolist() == high.tolist() == torch.tensor(CONSTANT, dtype=torch.float32).tolist()


def test_a_mask_written_as_zeros_and_ones_reads_as_booleans():
    _, low, high = action_range(stats(mask=[1] * 6 + [0]), None)
    np.testing.assert_allclose(low.numpy(), Q01[:6] + [-1.0], rtol=1e-6)
    np.testing.assert_allclose(high.numpy(), Q99[:6] + [1.0], rtol=1e-6)
