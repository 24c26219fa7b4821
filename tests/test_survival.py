"""Time to the next order with censoring, and the window sweep, on cases worked out by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg
from test_traffic import segments_frame

from greenery.chapter_kit import analyses, indicators, survival

# Six buyers, two groups. A: reorders at 1 h, censored at 3 h, reorders at 4 h.
# B: reorders at 2 h and 5 h, censored at 6 h.
HOURS = [1, 3, 4, 2, 5, 6]
EVENTS = [1, 0, 1, 1, 1, 0]
GROUPS = ["A", "A", "A", "B", "B", "B"]


def test_kaplan_meier_by_hand():
    # At risk and reorders: 1 h 6/1 -> 5/6; 2 h 5/1 -> 4/6; 3 h censored (3 left);
    # 4 h 3/1 -> 4/6 * 2/3 = 4/9; 5 h 2/1 -> 2/9; 6 h censored.
    curve = survival.kaplan_meier(HOURS, EVENTS)
    assert curve["hours"].tolist() == [0, 1, 2, 4, 5]
    assert curve["at_risk"].tolist() == [6, 6, 5, 3, 2]
    assert curve["not_yet"].tolist() == pytest.approx([1, 5 / 6, 4 / 6, 4 / 9, 2 / 9])
    # Greenwood at 1 h: S^2 * 1/(6*5); the log-log interval holds the estimate.
    assert curve.loc[1, "not_yet_low"] < 5 / 6 < curve.loc[1, "not_yet_high"]
    assert survival.reordered_by(curve, 4.5)[0] == pytest.approx(5 / 9)
    assert survival.median_hours(HOURS, EVENTS) == 4  # 4/9 is the first value at or below 1/2
    assert survival.quantile_hours(HOURS, EVENTS, 1 / 3) == 2  # 1 - 4/6 = 1/3


def test_censored_buyers_are_not_counted_as_lost():
    # Counting the censored as "never reordered" would give 4/6 reordered; Kaplan–Meier gives 7/9 by 5 h.
    assert survival.reordered_by(survival.kaplan_meier(HOURS, EVENTS), 5)[0] == pytest.approx(7 / 9)


def test_logrank_by_hand():
    # Reorder times 1, 2, 4 (5 has no A at risk). Expected for A: 3/6 + 2/5 + 1/3 = 1.2333; observed 2.
    # Variance: 3*3*1*5/(36*5) + 2*3*1*4/(25*4) + 1*2*1*2/(9*2) = .25 + .24 + .2222 = .7122.
    # chi-square = .76667^2 / .71222 = .82527, 1 degree of freedom, p = .3637.
    statistic, dof, p = survival.logrank(HOURS, EVENTS, GROUPS)
    assert statistic == pytest.approx(0.76667 ** 2 / 0.712222, rel=1e-4)
    assert dof == 1
    assert p == pytest.approx(0.36370, abs=1e-4)
    assert survival.logrank(HOURS, EVENTS, ["A"] * 6)[2] == 1.0  # one group: nothing to compare


def test_hazard_ratio_direction_and_symmetry():
    ratio, low, high = survival.hazard_ratio(HOURS, EVENTS, [g == "A" for g in GROUPS])
    back, b_low, b_high = survival.hazard_ratio(HOURS, EVENTS, [g == "B" for g in GROUPS])
    assert ratio == pytest.approx(1 / back) and low == pytest.approx(1 / b_high)
    assert low < 1 < high  # six buyers cannot tell the groups apart
    assert math.isnan(survival.hazard_ratio(HOURS, EVENTS, [True] * 6)[0])


def test_cox_gradient_and_hessian_by_hand():
    # beta = 0: each reorder adds (its x - the share of A at risk) to the gradient and share * (1 - share) to
    # minus the Hessian. 1 h: 3 A of 6 at risk, A reorders: +1/2, 1/4. 2 h: 2 A of 5, B: -2/5, 6/25.
    # 4 h: 1 A of 3, A: +2/3, 2/9. 5 h: 0 A of 2, B: 0, 0. Sums: 23/30 and -(1/4 + 6/25 + 2/9) = -641/900.
    x = np.array([[1.0] if g == "A" else [0.0] for g in GROUPS])
    model = survival._OneFlagPHReg(np.array(HOURS, dtype=float), x, status=np.array(EVENTS))
    assert model._plain
    assert model.breslow_gradient(np.array([0.0]))[0] == pytest.approx(23 / 30)
    assert model.breslow_hessian(np.array([0.0]))[0, 0] == pytest.approx(-641 / 900)


# Ties of three and more (reorders at 2 h and 4 h, buyers entering the risk set at 4 h and 7 h), a buyer
# reordering at 0.5 h and one censored before any reorder: every path of the group sums.
TIED_HOURS = [0.5, 1, 2, 2, 2, 2, 3, 4, 4, 4, 4, 4, 5, 6, 7, 7, 7, 7, 8, 0.2]
TIED_EVENTS = [1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0]
TIED_FLAGS = [1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0]
# Reorders at 0 h (the first distinct time: every buyer enters the risk set there), four buyers at 0 h.
ZERO_HOURS, ZERO_EVENTS, ZERO_FLAGS = [0, 0, 0, 1, 2, 0, 3], [1, 0, 1, 1, 0, 0, 1], [1, 0, 0, 1, 1, 0, 1]


@pytest.mark.parametrize(("hours", "events", "flags"), [
    (HOURS, EVENTS, [g == "A" for g in GROUPS]), (HOURS, EVENTS, [g == "B" for g in GROUPS]),
    (TIED_HOURS, TIED_EVENTS, TIED_FLAGS), (TIED_HOURS, TIED_EVENTS, [1 - f for f in TIED_FLAGS]),
    (ZERO_HOURS, ZERO_EVENTS, ZERO_FLAGS), (ZERO_HOURS, ZERO_EVENTS, [1 - f for f in ZERO_FLAGS]),
])
def test_cox_fit_is_statsmodels_to_the_bit(hours, events, flags):
    """The likelihood, gradient and Hessian on whole arrays are statsmodels' loop's to the last bit, at the
    start, on both sides and far out (where the sums are most uneven), and so is the fit: estimate and standard
    error."""
    args = (np.array(hours, dtype=float), np.array(flags, dtype=float)[:, None])
    ours, theirs = survival._OneFlagPHReg(*args, status=np.array(events)), PHReg(*args, status=np.array(events))
    assert ours._plain
    for beta in (0.0, 0.8, -1.7, 6.0):
        params = np.array([beta])
        assert ours.breslow_gradient(params).tolist() == theirs.breslow_gradient(params).tolist()
        assert ours.breslow_hessian(params).tolist() == theirs.breslow_hessian(params).tolist()
        assert ours.breslow_loglike(params) == theirs.breslow_loglike(params)
    fitted, expected = ours.fit(disp=False), theirs.fit(disp=False)
    assert (fitted.params.tolist(), fitted.bse.tolist()) == (expected.params.tolist(), expected.bse.tolist())


def _fitted(model):
    """A Cox fit's estimate and standard error, or the error it raised (separation: a singular Hessian)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separation: statsmodels warns that the fit did not converge
        try:
            fit = model.fit(disp=False)
        except np.linalg.LinAlgError as error:
            return str(error)
    return fit.params.tolist(), fit.bse.tolist()


def test_cox_fit_is_statsmodels_to_the_bit_on_generated_buyers():
    """Forty generated cohorts (5 to 400 buyers, times rounded to make ties or not, any share reordering and
    flagged): sums in another order or a square by x * x rather than pow differ in the last bits on some."""
    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(40):
        n = int(rng.integers(5, 400))
        ties = rng.integers(1, 6)
        hours = np.round(rng.exponential(20, n) * ties) / ties if rng.random() < 0.7 else rng.exponential(20, n)
        events = (rng.random(n) < rng.random()).astype(int)
        flags = (rng.random(n) < rng.random()).astype(float)[:, None]
        if flags.min() == flags.max() or not events.any():
            continue
        ours, theirs = survival._OneFlagPHReg(hours, flags, status=events), PHReg(hours, flags, status=events)
        for beta in (0.0, 0.7, -1.3, 3.0):
            params = np.array([beta])
            assert ours.breslow_gradient(params).tolist() == theirs.breslow_gradient(params).tolist()
            assert ours.breslow_hessian(params).tolist() == theirs.breslow_hessian(params).tolist()
            assert ours.breslow_loglike(params) == theirs.breslow_loglike(params)
        assert _fitted(ours) == _fitted(theirs)
        compared += 1
    assert compared == 38


def test_cox_fit_is_statsmodels_to_the_bit_with_groups_larger_than_summed_one_by_one():
    """Groups past EINSUM_ONE_BY_ONE (statsmodels' own expressions then): 6,000 buyers at three times."""
    rng = np.random.default_rng(2)
    hours = rng.integers(1, 4, 6_000).astype(float)
    events, flags = (rng.random(6_000) < 0.6).astype(int), (rng.random(6_000) < 0.5).astype(float)[:, None]
    ours, theirs = survival._OneFlagPHReg(hours, flags, status=events), PHReg(hours, flags, status=events)
    assert ours._plain and ours._entering.sizes.max() > survival.EINSUM_ONE_BY_ONE
    assert ours._failing.sizes.min() > survival.EINSUM_ONE_BY_ONE
    for beta in (0.0, 0.4, -2.0):
        params = np.array([beta])
        assert ours.breslow_gradient(params).tolist() == theirs.breslow_gradient(params).tolist()
        assert ours.breslow_hessian(params).tolist() == theirs.breslow_hessian(params).tolist()
        assert ours.breslow_loglike(params) == theirs.breslow_loglike(params)
    assert _fitted(ours) == _fitted(theirs)


def _same(ours, theirs) -> bool:
    """Equal to the last bit and of the same types: arrays (dtype too), lists, numbers."""
    if isinstance(theirs, np.ndarray):
        return isinstance(ours, np.ndarray) and ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    if isinstance(theirs, list):
        return isinstance(ours, list) and len(ours) == len(theirs) and all(map(_same, ours, theirs))
    return type(ours) is type(theirs) and ours == theirs


def test_cox_model_is_built_as_statsmodels_builds_it():
    """Every attribute of the model and of its survival times (the buyers kept, their order, each distinct
    time's groups) is statsmodels' own: by hand first (the buyer censored at 0.2 h, before any reorder, is
    left out; 2 h holds three reorders), then on generated cohorts."""
    model = survival._OneFlagPHReg(np.array(TIED_HOURS, dtype=float), np.array(TIED_FLAGS, dtype=float)[:, None],
                                   status=np.array(TIED_EVENTS))
    assert model.surv.n_obs == 19 and 19 not in model.surv.stratum_rows[0]
    assert model.surv.ufailt[0].tolist() == [0.5, 2, 3, 4, 5, 7, 8]
    assert [len(g) for g in model.surv.ufailt_ix[0]] == [1, 3, 1, 3, 1, 1, 1]
    rng = np.random.default_rng(1)
    cases = [(TIED_HOURS, TIED_EVENTS, TIED_FLAGS), (HOURS, EVENTS, [g == "A" for g in GROUPS])]
    for _ in range(30):
        n = int(rng.integers(2, 300))
        hours = np.round(rng.exponential(20, n)) if rng.random() < 0.7 else rng.exponential(20, n)
        cases.append((hours, (rng.random(n) < rng.random()).astype(int), (rng.random(n) < 0.5)))
    for hours, events, flags in cases:
        args = (np.array(hours, dtype=float), np.array(flags, dtype=float)[:, None])
        ours, theirs = survival._OneFlagPHReg(*args, status=np.array(events)), PHReg(*args, status=np.array(events))
        mine = {k: v for k, v in vars(ours).items() if k not in ("_plain", "_flag", "_failing", "_entering", "_leaving")}
        assert mine.keys() == vars(theirs).keys()
        for name, value in vars(theirs).items():
            if name == "surv":
                assert vars(ours.surv).keys() == vars(value).keys()
                assert all(_same(vars(ours.surv)[k], v) for k, v in vars(value).items()), name
            elif name != "data":
                assert _same(mine[name], value), name
        assert _same(ours.data.exog, theirs.data.exog) and _same(ours.data.endog, theirs.data.endog)


def test_cox_other_models_are_statsmodels_own():
    # a covariate not of 0s and 1s, two covariates: statsmodels' loop itself
    hours = np.array(HOURS, dtype=float)
    for exog in (np.array([[0.5], [1], [2], [0], [1], [3]]), np.array([[1, 0], [1, 1], [1, 0], [0, 1], [0, 0], [0, 1]])):
        ours = survival._OneFlagPHReg(hours, exog.astype(float), status=np.array(EVENTS))
        assert not ours._plain
        theirs = PHReg(hours, exog.astype(float), status=np.array(EVENTS))
        params = np.full(exog.shape[1], 0.3)
        assert ours.breslow_hessian(params).tolist() == theirs.breslow_hessian(params).tolist()
        assert ours.breslow_loglike(params) == theirs.breslow_loglike(params)


def test_survival_tests_use_every_buyer_and_adjust():
    # promo: A (5 reorder fast) against B (5, slower, two censored); hour: one segment only.
    rows = []
    for i, (hours, event, seg) in enumerate([(1, 1, "promo"), (1.5, 1, "promo"), (2, 1, "promo"), (2.5, 1, "promo"),
                                             (3, 1, "promo"), (10, 1, "no promo"), (11, 1, "no promo"),
                                             (12, 1, "no promo"), (20, 0, "no promo"), (20, 0, "no promo")]):
        rows.append({"indicator": "promo", "segment": seg, "segment_order": 1 if seg == "promo" else 2, "buyer": i,
                     "hours_followed": hours, "reordered": bool(event)})
        rows.append({"indicator": "sessions", "segment": "1 session", "segment_order": 1, "buyer": i,
                     "hours_followed": hours, "reordered": bool(event)})
    result = survival.indicator_tests(pd.DataFrame(rows), indicators.TITLES).set_index("indicator")
    assert result.loc["promo", "buyers"] == 10 and result.loc["promo", "reordered"] == 8
    assert not result.loc["sessions", "testable"]
    # One test in the family: Holm leaves it as it is.
    assert result.loc["promo", "p_adjusted"] == pytest.approx(result.loc["promo", "p_value"])
    assert result.loc["promo", "p_value"] < 0.01 and result.loc["promo", "is_signal"]
    # Every promo buyer reordered before any other buyer: no finite hazard ratio exists, none is shown.
    assert math.isnan(result.loc["promo", "hazard_ratio"])


def test_time_to_next_order_on_the_shop(shop_db):
    # u1: 30.5 h to o2; u2: never again, censored at the export's end 20 h 1 s later; u3: 20 h to o5.
    rows = analyses.frame(shop_db, "time_to_next_order", {"max_sessions_per_hour": 10,
                                                          "max_sessions_per_account": 50})
    buyers = rows.drop_duplicates("buyer").sort_values("buyer")
    assert buyers["hours_followed"].tolist() == pytest.approx([30.5, 20.0, 20 + 1 / 3600])  # by first order
    assert buyers["reordered"].tolist() == [True, True, False]
    assert buyers["order_count"].tolist() == [2, 3, 1]
    assert "delivery" not in set(rows["indicator"])
    # The same segments as the equal-follow-up query: at 24 h the cohort is u1 and u3.
    promo = rows[rows["indicator"] == "promo"].set_index("buyer")["segment"].to_dict()
    assert promo == {1: "no promo", 2: "promo", 3: "no promo"}
    windows = analyses.frame(shop_db, "follow_up")
    # A third of buyers had reordered at 20 h (u3); the longest window keeping more than half is 32 h.
    assert indicators.window_range(windows, buyers["hours_followed"], buyers["reordered"]) == (20, 32)


# A fixture where the conclusion flips with the window: at 10 h promo 5/5 against 0/5 (Fisher
# p = 2/252 = .0079, significant); at 20 h 5/5 against 4/5 (Fisher p = 1), still ahead, not significant.
FLIP = {10: segments_frame({"promo": [("promo", 5, 5), ("no promo", 0, 5)]}),
        20: segments_frame({"promo": [("promo", 5, 5), ("no promo", 4, 5)]})}


def test_the_window_sweep_states_a_flipping_conclusion_with_its_range():
    swept = indicators.sweep(FLIP)
    assert swept["p_adjusted"].astype(float).tolist() == pytest.approx([2 / 252, 1.0])
    assert swept["is_signal"].tolist() == [True, False]
    assert swept["difference"].tolist() == pytest.approx([1.0, 0.2])
    text = indicators.window_verdict(swept, "promo", "promo buyers")
    assert text.startswith("promo buyers were ahead at every window from 10 to 20 h (by 20.0 to 100.0 points)")
    assert "only at 10 h" in text and "a hypothesis" in text
    steady = indicators.window_verdict(indicators.sweep({10: FLIP[20], 20: FLIP[20]}), "promo", "promo buyers")
    assert "at none of them: no evidence of a difference" in steady


def test_hours_text():
    assert indicators.hours_text([10, 11, 12, 13, 16]) == "10–13 h and 16 h"
    assert indicators.hours_text([8]) == "8 h"


def test_best_case_respects_the_ceiling():
    # 6 promo buyers against 48 of 59: even 6 of 6 gives Fisher p = .579; no result could show a rise.
    p, gap, text = indicators.best_case(6, 48, 59, 0.05)
    assert p == pytest.approx(0.5788, abs=1e-3) and math.isnan(gap)
    assert "no result from 6 buyers could show a rise" in text
    # 14 buyers against 40 of 100: 14 of 14 would be significant; the detectable rise fits under 100 %.
    p, gap, text = indicators.best_case(14, 40, 100, 0.05)
    assert p < 0.05 and 0.40 + gap < 1 and "would be detected 80 % of the time" in text


def test_the_sweep_reports_each_window_as_its_own_tests_and_segments():
    # Each row of the sweep is that window's indicator test and the indicator's first segment,
    # exactly as indicator_tests and segments give them one window at a time.
    swept = indicators.sweep(FLIP).set_index(["hours", "indicator"])
    for hours, frame in FLIP.items():
        tests = indicators.indicator_tests(frame).set_index("indicator")
        for name, row in tests.iterrows():
            lead = indicators.segments(frame[frame["indicator"] == name]).iloc[0]
            got = swept.loc[(hours, name)]
            assert (got.p_value, got.p_adjusted, got.segment, got.buyers, got.difference_low) == (
                row.p_value, row.p_adjusted, lead.segment, lead.buyers, lead.difference_low)


def _sweep_window_by_window(frames: dict, alpha: float, adjustment: str) -> pd.DataFrame:
    """The sweep as it was first written: each window's indicator_tests frame and each indicator's segments
    frame, row by row (the reference its plain-values version must give exactly)."""
    rows = []
    for hours, frame in sorted(frames.items()):
        if not len(frame):
            continue
        tests = indicators.indicator_tests(frame, alpha, adjustment)
        for row in tests.itertuples():
            lead = indicators.segments(frame[frame["indicator"] == row.indicator]).iloc[0]
            rows.append({"hours": hours, "indicator": row.indicator, "testable": bool(row.testable),
                         "p_value": row.p_value, "p_adjusted": row.p_adjusted, "is_signal": bool(row.is_signal),
                         "segment": lead.segment, "buyers": int(lead.buyers), "repeat_buyers": int(lead.repeat_buyers),
                         "rate": lead.rate, "rest_buyers": int(lead.rest_buyers), "rest_rate": lead.rest_rate,
                         "difference": lead.difference, "difference_low": lead.difference_low,
                         "difference_high": lead.difference_high})
    return pd.DataFrame(rows)


# At 5 h nothing is testable (one segment of 5 or more per indicator): its p-values are None, a column of
# None alone, NaN among other windows' numbers. At 7 h products has
# the very counts of cart adds (tested once), and the four hour-of-day segments need a permutation test.
SWEEP_CASES = {
    5: segments_frame({"promo": [("promo", 1, 4), ("no promo", 2, 6)], "sessions": [("1 session", 3, 3)]}),
    7: segments_frame({"hour_of_day": [("00–05 h", 1, 3), ("06–11 h", 4, 6), ("12–17 h", 0, 5), ("18–23 h", 5, 7)],
                       "cart_adds": [("0–1 adds", 2, 9), ("2 adds", 6, 8)],
                       "products": [("1 product", 2, 9), ("2 products", 6, 8)],
                       "promo": [("promo", 5, 5), ("no promo", 4, 12)]}),
    9: segments_frame({"promo": [("promo", 5, 5), ("no promo", 0, 5)]}).iloc[0:0],  # an empty window: skipped
}


@pytest.mark.parametrize("adjustment", ["holm", "bh"])
def test_the_sweep_is_exactly_the_window_by_window_frames(adjustment):
    for frames in (SWEEP_CASES, {5: SWEEP_CASES[5]}, FLIP):
        swept = indicators.sweep.compute(frames, 0.05, adjustment)
        expected = _sweep_window_by_window(frames, 0.05, adjustment)
        pd.testing.assert_frame_equal(swept, expected, check_exact=True)
        assert [type(v) for v in swept["p_value"]] == [type(v) for v in expected["p_value"]]
    swept = indicators.sweep.compute(SWEEP_CASES)
    assert str(swept["p_value"].dtype) == "float64" and swept["p_value"].isna().tolist() == [True, True, False, False, False, True]
    assert swept.loc[swept["indicator"] == "products", "testable"].tolist() == [False]  # same counts as cart adds
    assert str(indicators.sweep.compute({5: SWEEP_CASES[5]})["p_value"].dtype) == "object"  # None: nothing tested
