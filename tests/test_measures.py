import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tokenclear.errors import ConfigurationError
from tokenclear.margin.measures import loss_measure, tail_count

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 300)), elements=finite),
       st.floats(0.51, 0.999))
@settings(max_examples=150, deadline=None)
def test_quantile_matches_numpy_on_losses(pnl, confidence):
    expected = np.quantile(-pnl, confidence, axis=1)  # numpy's default linear interpolation
    np.testing.assert_allclose(loss_measure(pnl, confidence=confidence), expected, rtol=1e-9, atol=1e-6)


def test_worked_example_by_hand():
    # P&L of one account in 11 scenarios; losses sorted: 10, 8, 6, 4, 2, 0, ...
    pnl = np.array([[-10.0, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10]])
    # h = (11 - 1) * 0.05 = 0.5 -> halfway between the worst (-10) and second worst (-8) P&L
    assert loss_measure(pnl, confidence=0.95)[0] == pytest.approx(9.0)
    # kth: k = ceil(11 * 0.2) = 3 -> third worst loss is 6
    assert loss_measure(pnl, measure="kth", confidence=0.80)[0] == pytest.approx(6.0)
    # ES at 80%: mean of the ceil(11 * 0.2) = 3 worst losses (10 + 8 + 6) / 3
    assert loss_measure(pnl, measure="es", confidence=0.80)[0] == pytest.approx(8.0)


@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(20, 400)), elements=finite),
       st.floats(0.9, 0.995))
@settings(max_examples=100, deadline=None)
def test_expected_shortfall_is_at_least_var_at_the_same_level(pnl, confidence):
    var = loss_measure(pnl, measure="kth", confidence=confidence)
    es = loss_measure(pnl, measure="es", confidence=confidence)
    assert np.all(es >= var - 1e-9 * np.maximum(1.0, np.abs(var)))


def test_tail_count_conventions():
    assert tail_count(1250, 0.99) == 13
    assert tail_count(1000, 0.99) == 10
    assert tail_count(1250, 0.975) == math.ceil(31.25)


def test_bad_measure_and_confidence_are_errors():
    with pytest.raises(ConfigurationError, match="unknown risk measure"):
        loss_measure(np.zeros((1, 10)), measure="median")
    with pytest.raises(ConfigurationError, match="confidence"):
        loss_measure(np.zeros((1, 10)), confidence=1.5)
