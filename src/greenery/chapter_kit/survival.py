"""Time to a buyer's next order, with censoring: Kaplan–Meier curves, log-rank tests, Cox hazard ratios.

A buyer who has not ordered again by the export's end is *censored*: we know only that they had
not come back yet, not that they never will. Counting them as "did not reorder" would read the
export's end as behaviour (a buyer whose first order came an hour before it had no chance), so
every buyer is kept and followed for as long as the export allows: Kaplan–Meier estimates the
share still without a second order at each hour, a log-rank test compares segments over the whole
curve, and a Cox model gives one segment's hazard ratio (how much faster it reorders) with its
interval. The fitting is statsmodels' `duration` module (a maintained library, not the book's own
code); the inputs are the small per-buyer frame of the `time_to_next_order` analysis. Each function
is tested on a case worked out by hand (tests/test_survival.py).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.base.model import LikelihoodModel
from statsmodels.duration.hazard_regression import PHReg, PHSurvivalTime
from statsmodels.duration.survfunc import SurvfuncRight, survdiff
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from greenery.chapter_kit import stats
from greenery.chapter_kit.shared import once_per_report

MIN_SEGMENT_BUYERS = 5  # as for the equal-follow-up tests: a segment smaller than this is not compared


def kaplan_meier(hours, reordered, confidence: float = 0.95) -> pd.DataFrame:
    """The Kaplan–Meier curve: at each hour a buyer reordered, buyers still followed (at risk), reorders,
    and the share *not yet* reordered with its interval (Greenwood's variance on the log-log scale,
    which keeps the bounds between 0 and 1). Starts with a row at hour 0, everyone not yet reordered."""
    hours = np.asarray(hours, dtype=float)
    events = np.asarray(reordered, dtype=int)
    start = pd.DataFrame({"hours": [0.0], "at_risk": [len(hours)], "reorders": [0], "not_yet": [1.0],
                          "not_yet_low": [1.0], "not_yet_high": [1.0]})
    if not len(hours) or not events.any():
        return start
    fit = SurvfuncRight(hours, events)
    s = np.asarray(fit.surv_prob, dtype=float)
    se = np.asarray(fit.surv_prob_se, dtype=float)
    z = sps.norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = z * se / (s * np.abs(np.log(s)))
        low = np.exp(-np.exp(np.log(-np.log(s)) + spread))
        high = np.exp(-np.exp(np.log(-np.log(s)) - spread))
    undefined = (s <= 0) | (s >= 1) | ~np.isfinite(spread)
    low, high = np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)
    curve = pd.DataFrame({"hours": np.asarray(fit.surv_times, dtype=float), "at_risk": fit.n_risk.astype(int),
                          "reorders": fit.n_events.astype(int), "not_yet": s, "not_yet_low": low,
                          "not_yet_high": high})
    return pd.concat([start, curve], ignore_index=True)


def reordered_by(curve: pd.DataFrame, hours: float) -> tuple[float, float, float]:
    """From a Kaplan–Meier curve: the share who had reordered by `hours`, with its interval
    (nan past the last buyer still followed: the curve says nothing there)."""
    if hours > curve["hours"].max() and curve["at_risk"].iloc[-1] - curve["reorders"].iloc[-1] <= 0:
        return (math.nan, math.nan, math.nan)
    row = curve[curve["hours"] <= hours].iloc[-1]
    return (1 - row.not_yet, 1 - row.not_yet_high, 1 - row.not_yet_low)


def median_hours(hours, reordered) -> float:
    """Hours by which half of the buyers had reordered (Kaplan–Meier); nan if fewer than half ever did."""
    curve = kaplan_meier(hours, reordered)
    reached = curve[curve["not_yet"] <= 0.5]
    return float(reached["hours"].iloc[0]) if len(reached) else math.nan


def quantile_hours(hours, reordered, share: float) -> float:
    """Hours by which `share` of the buyers had reordered (Kaplan–Meier); nan if never reached."""
    curve = kaplan_meier(hours, reordered)
    reached = curve[curve["not_yet"] <= 1 - share + 1e-12]
    return float(reached["hours"].iloc[0]) if len(reached) else math.nan


def logrank(hours, reordered, groups) -> tuple[float, int, float]:
    """Log-rank test that the segments reorder at the same pace over the whole follow-up:
    (chi-square statistic, degrees of freedom, p). Untestable (one segment, or no reorder): p = 1."""
    groups = np.asarray(groups)
    labels = pd.unique(groups)
    events = np.asarray(reordered, dtype=int)
    if len(labels) < 2 or not events.any():
        return (math.nan, 0, 1.0)
    codes = pd.Categorical(groups, categories=labels).codes
    statistic, p = survdiff(np.asarray(hours, dtype=float), events, codes)
    return (float(statistic), len(labels) - 1, float(p))


def hazard_ratio(hours, reordered, in_segment, confidence: float = 0.95) -> tuple[float, float, float]:
    """Cox proportional-hazards model with one yes/no covariate: how many times faster buyers in the
    segment reorder than the rest (1: same pace), with its interval (Breslow's handling of ties)."""
    x = np.asarray(in_segment, dtype=float)
    events = np.asarray(reordered, dtype=int)
    if x.min() == x.max() or not events.any():
        return (math.nan, math.nan, math.nan)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = _OneFlagPHReg(np.asarray(hours, dtype=float), x[:, None], status=events).fit(disp=False)
    beta, se = float(fit.params[0]), float(fit.bse[0])
    z = sps.norm.ppf(0.5 + confidence / 2)
    # When one group's reorders all come before the other's (separation), the estimate runs off to
    # infinity and the fit does not converge: there is no finite ratio to report.
    if any(issubclass(w.category, ConvergenceWarning) for w in caught) or not abs(beta) + z * se < 700:
        return (math.nan, math.nan, math.nan)
    return (math.exp(beta), math.exp(beta - z * se), math.exp(beta + z * se))


class _Groups:
    """Rows grouped by distinct reorder time: `rows` (int32) holds each group's rows one after the other, group g
    from bounds[g] to bounds[g + 1]. As statsmodels holds them (`members`: an index array per group), and as
    read for their sums (`rows`, each group's start and size)."""

    def __init__(self, rows: np.ndarray, bounds: np.ndarray):
        starts, ends = bounds[:-1], bounds[1:]
        self.members = [rows[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        self.rows, self.starts, self.sizes = rows, starts, ends - starts

    def sums(self, values: np.ndarray, exact, one_by_one: int, less: np.ndarray | None = None) -> np.ndarray:
        """Each group's sum of `values` (one per row; less the group's `less`, if given) as statsmodels' numpy
        expression works it out: for a group of up to `one_by_one` rows, numpy adds one row after another from
        the first (a sum of up to 7 values; einsum whatever their number, tested up to 1,000), done here a row
        position at a time for every such group at once; for a larger group `exact(group's rows, group)`, the
        expression itself (a sum of 8 or more: numpy's pairwise summation)."""
        out = np.zeros(len(self.sizes))
        small = np.flatnonzero(self.sizes <= one_by_one)
        for at in range(int(self.sizes[small].max(initial=0))):
            small = small[self.sizes[small] > at]
            term = values[self.rows[self.starts[small] + at]]
            out[small] = out[small] + (term if less is None else term - less[small])  # 0.0 + the first: the first
        for g in np.flatnonzero(self.sizes > one_by_one):
            out[g] = exact(self.members[g], g)
        return out


# A sum of up to this many values is numpy's one value after another (its pairwise summation starts at 8);
# einsum adds one product after another whatever their number (tested up to 1,000; beyond it, einsum is called)
SUM_ONE_BY_ONE, EINSUM_ONE_BY_ONE = 7, 1_000


def _running(enter: np.ndarray, leave: np.ndarray) -> np.ndarray:
    """statsmodels' running sums over the distinct times from the last back (`x += enter`, used, `x -= leave`):
    the values used, by the same additions in the same order (`np.add.accumulate` adds one term after
    another; x - y is x + (-y) to the bit; an empty group adds 0.0, which changes no sum)."""
    steps = np.empty(2 * len(enter))
    steps[0::2], steps[1::2] = enter[::-1], -leave[::-1]
    return np.add.accumulate(steps)[0::2][::-1]


def _one_stratum(time, status, exog) -> tuple[PHSurvivalTime, tuple[_Groups, _Groups, _Groups] | None]:
    """statsmodels' PHSurvivalTime(time, status, exog) with no strata, entry times or offset, worked out on whole
    arrays: the same buyers kept in the same order (sorted by time with numpy's same default sort), and each
    distinct reorder time's groups of rows (reordering, entering the risk set, leaving it) with the same rows
    in the same (ascending) order, as int32 arrays; with those groups (reordering, entering, leaving) as
    `_Groups`, None when nobody reordered. Its checks and errors are statsmodels' own."""
    surv = object.__new__(PHSurvivalTime)
    strata, entry = np.zeros(len(time), dtype=np.int32), np.zeros(len(time))
    surv._check(time, status, strata, entry)
    rows = np.arange(len(time), dtype=np.int32)
    surv.nstrat_orig = 1
    kept = status.sum() > 0
    surv.nstrat = int(kept)
    surv.stratum_names = [np.unique(strata)[0]] if kept else []
    surv.offset_s = None
    surv.ufailt_ix, surv.risk_enter, surv.risk_exit, surv.ufailt = [], [], [], []
    if not kept:
        surv.stratum_rows, surv.n_obs = [], 0
        surv.time_s, surv.exog_s, surv.status_s, surv.entry_s = [], [], [], []
        return surv, None
    failed = time[status == 1]
    rows = rows[entry <= failed.max()]  # statsmodels: entry times up to the last reorder
    rows = rows[time[rows] >= failed.min()]  # ... and times from the first one on
    rows = rows[np.argsort(time[rows])]
    surv.stratum_rows, surv.n_obs = [rows], len(rows)
    surv.time_s, surv.exog_s, surv.status_s, surv.entry_s = [time[rows]], [exog[rows, :]], [status[rows]], [entry[rows]]
    time_s, status_s = surv.time_s[0], surv.status_s[0]
    failing = np.flatnonzero(status_s == 1)
    distinct = np.unique(time_s[failing])

    def grouped(members: np.ndarray, at: np.ndarray) -> _Groups:
        """`members` (ascending) by the distinct time each is at, every distinct time a group, in order."""
        order = np.argsort(at, kind="stable")
        members, at = members[order].astype(np.int32), at[order]
        return _Groups(members, np.r_[0, np.searchsorted(at, np.arange(1, len(distinct))), len(members)])

    entering = np.searchsorted(distinct, time_s, "right") - 1
    inside = np.flatnonzero(entering >= 0)
    groups = (grouped(failing, np.searchsorted(distinct, time_s[failing])), grouped(inside, entering[inside]),
              grouped(np.arange(len(time_s)), np.searchsorted(distinct, surv.entry_s[0])))
    surv.ufailt.append(distinct)
    for kept_in, group in zip((surv.ufailt_ix, surv.risk_enter, surv.risk_exit), groups, strict=True):
        kept_in.append(group.members)
    return surv, groups


class _OneFlagPHReg(PHReg):
    """statsmodels' Cox model, its Breslow likelihood, gradient and Hessian worked out on whole arrays rather
    than in its Python loop over the distinct reorder times (two likelihoods, five gradients and five Hessians a
    fit, 1,200 times each at sample scale 10: half of the repeat-indicators chapter's CPU time there, and more
    the larger the export), for what `hazard_ratio` fits: one covariate of 0s and 1s, no strata or offset. The
    same floating-point operations in the same order (each group's sum as `_Groups.sums`, the running sums as
    `_running`, the square of a sum by `pow` as Python's `**` on a numpy scalar does), so the fit is
    statsmodels' to the last bit (tests/test_survival.py compares both on ties, censoring and both signs);
    any other model is statsmodels' own."""

    def __init__(self, endog, exog, status):
        # PHReg.__init__ (statsmodels 0.15.0, pinned) for no strata, entry times or offset, its survival times
        # (PHSurvivalTime: a Python step per buyer, half of a fit at sample scale 100) worked out on whole
        # arrays by `_one_stratum` when there is one covariate of 0s and 1s (tests/test_survival.py compares
        # every attribute with statsmodels' own)
        LikelihoodModel.__init__(self, endog, exog, status=status, entry=None, strata=None, offset=None,
                                 missing="drop")
        self.status = np.asarray(self.status)
        self._plain = self.exog.shape[1] == 1 and bool(np.isin(self.exog, (0.0, 1.0)).all())
        if self._plain:
            self.surv, groups = _one_stratum(self.endog, self.status, self.exog)
        else:
            self.surv = PHSurvivalTime(self.endog, self.status, self.exog, self.strata, self.entry, self.offset)
        self.nobs = len(self.endog)
        self.groups = None
        self.missing = "drop"
        self.df_resid = float(self.exog.shape[0] - np.linalg.matrix_rank(self.exog))
        self.df_model = float(np.linalg.matrix_rank(self.exog))
        self.ties = "breslow"
        surv = self.surv
        self._plain = self._plain and surv.nstrat == 1
        if self._plain:
            exog = surv.exog_s[0]
            self._flag = exog[:, 0]
            self._failing, self._entering, self._leaving = groups

    def _linear(self, params):
        """The linear predictor less its largest value, and its exponential, as statsmodels works them out."""
        linpred = np.dot(self.surv.exog_s[0], params)
        linpred -= linpred.max()
        return linpred, np.exp(linpred)

    def _risk_sums(self, e_linpred, weighted_too: bool = True):
        """The risk set's running sums at each distinct time, as statsmodels' loop holds them when it uses them:
        sum of exp(linear predictor) (xp0), of it times the covariate (xp1) and times its square (xp2)."""
        exog = self.surv.exog_s[0]
        weighted = e_linpred * self._flag  # e * x; e * x * x is the same number for x of 0 or 1

        def xp0(ix, _):
            return e_linpred[ix].sum()

        def xp1(ix, _):
            return (e_linpred[ix][:, None] * exog[ix, :]).sum(0)[0]

        def xp2(ix, _):
            v = exog[ix, :]
            return np.einsum("ij,ik,i->jk", v, v, e_linpred[ix])[0, 0]

        sums = ((e_linpred, xp0, SUM_ONE_BY_ONE), (weighted, xp1, SUM_ONE_BY_ONE), (weighted, xp2, EINSUM_ONE_BY_ONE))
        return tuple(_running(self._entering.sums(*sum_of), self._leaving.sums(*sum_of))
                     for sum_of in (sums if weighted_too else sums[:1]))

    def breslow_loglike(self, params):
        if not self._plain:
            return super().breslow_loglike(params)
        linpred, e_linpred = self._linear(params)
        (xp0,) = self._risk_sums(e_linpred, weighted_too=False)
        logs = np.log(xp0)  # numpy's log, element by element: the same as on each sum alone (tested)
        terms = self._failing_terms(linpred, logs, lambda ix, i: (linpred[ix] - logs[i]).sum())
        return np.add.accumulate(terms[::-1])[-1]

    def breslow_gradient(self, params):
        if not self._plain:
            return super().breslow_gradient(params)
        xp0, xp1, _ = self._risk_sums(self._linear(params)[1])
        share = xp1 / xp0
        exog = self.surv.exog_s[0]

        def term(ix, i):
            return (exog[ix, :] - share[i:i + 1]).sum(0)[0]

        return np.array([np.add.accumulate(self._failing_terms(self._flag, share, term)[::-1])[-1]])

    def _failing_terms(self, values, less, term):
        """Each distinct time's sum, over the buyers reordering then, of (their value - that time's `less`), as
        `_Groups.sums`: (x - xp1 / xp0) for the gradient, (linear predictor - log xp0) for the likelihood."""
        return self._failing.sums(values, term, SUM_ONE_BY_ONE, less)

    def breslow_hessian(self, params):
        if not self._plain:
            return super().breslow_hessian(params)
        xp0, xp1, xp2 = self._risk_sums(self._linear(params)[1])
        squared = np.array([v ** 2 for v in xp0.tolist()])  # C's pow, as `xp0**2` on a numpy scalar (not x * x)
        terms = self._failing.sizes * (xp2 / xp0 - (xp1 * xp1) / squared)
        return -np.array([[np.add.accumulate(terms[::-1])[-1]]])


@once_per_report  # the promos and indicators chapters both need every test: computed once per report
def indicator_tests(buyers: pd.DataFrame, titles: dict[str, str], alpha: float = 0.05,
                    adjustment: str = "holm") -> pd.DataFrame:
    """One log-rank test per indicator over all its segments, every buyer in it, p-values adjusted across
    those tested (Holm, or "bh": Benjamini–Hochberg).

    `buyers` is the `time_to_next_order` analysis (indicator, segment, segment_order, buyer,
    hours_followed, reordered). Segments of fewer than MIN_SEGMENT_BUYERS are left out of the test
    (and said so); an indicator needs two segments that large. An indicator splitting buyers exactly
    as an earlier one does is the same comparison: tested once, under the first name (`same_as`).
    Estimate: the segment whose pace differs most from the rest (Cox hazard ratio, furthest from 1 on
    the log scale) with its interval."""
    rows, seen = [], {}
    for name in [n for n in titles if n in set(buyers["indicator"])]:
        group = buyers[buyers["indicator"] == name].sort_values(["segment_order", "buyer"])
        sizes = group.groupby("segment", sort=False).size()
        kept = group[group["segment"].isin(sizes[sizes >= MIN_SEGMENT_BUYERS].index)]
        partition = frozenset(frozenset(b) for _, b in kept.groupby("segment")["buyer"])
        testable = kept["segment"].nunique() >= 2 and bool(kept["reordered"].any())
        same_as = seen.get(partition) if testable else None
        if testable and same_as is None:
            seen[partition] = name
        statistic, dof, p = logrank(kept["hours_followed"], kept["reordered"], kept["segment"]) if testable \
            else (math.nan, 0, math.nan)
        best = (None, math.nan, math.nan, math.nan)
        if testable:
            for segment in kept["segment"].unique():
                ratio = hazard_ratio(kept["hours_followed"], kept["reordered"], kept["segment"] == segment)
                if math.isnan(ratio[0]):
                    continue
                if best[0] is None or abs(math.log(ratio[0])) > abs(math.log(best[1])):
                    best = (segment, *ratio)
        rows.append({"indicator": name, "segments": int(group["segment"].nunique()),
                     "segments_tested": int(kept["segment"].nunique()), "buyers": int(group["buyer"].nunique()),
                     "reordered": int(group["reordered"].sum()), "testable": testable and same_as is None,
                     "same_as": same_as, "statistic": statistic, "dof": dof,
                     "p_value": p if testable and same_as is None else math.nan,
                     "segment": best[0], "hazard_ratio": best[1], "ratio_low": best[2], "ratio_high": best[3]})
    result = pd.DataFrame(rows)
    if result.empty:
        return result.assign(p_adjusted=[], is_signal=[])
    tested = result["testable"]
    result["p_adjusted"] = math.nan
    if tested.any():
        adjust = stats.holm if adjustment == "holm" else stats.benjamini_hochberg
        result.loc[tested, "p_adjusted"] = adjust(result.loc[tested, "p_value"].astype(float).tolist())
    result["is_signal"] = tested & (result["p_adjusted"] < alpha)
    return result
