"""Unusual traffic in words: the rules of fct_account_traffic, their thresholds, and what they flag.

The rules are applied by the analyses (their thresholds are the chapters' parameters); this
module only turns the `unusual_traffic` analysis into the sentences the chapters share.
"""

from __future__ import annotations

import pandas as pd

from greenery.chapter_kit import formats as fmt

RULES = {
    "burst": "more than {threshold} sessions started by one account in one clock hour",
    "volume": "more than {threshold} sessions by one account in the export",
}
MEASURES = {"burst": "sessions started in its busiest hour", "volume": "sessions in the export"}


def params(max_sessions_per_hour: int, max_sessions_per_account: int) -> dict:
    return {"max_sessions_per_hour": max_sessions_per_hour, "max_sessions_per_account": max_sessions_per_account}


def rules_table(rules: pd.DataFrame) -> pd.DataFrame:
    """One row per rule: what it says, what it flags, and where everyone else stands (counts as values,
    for book.table to format and offer as CSV; a missing one, when no account is flagged, is empty)."""
    named = rules[rules["rule"].isin(list(RULES))]
    return pd.DataFrame({
        "Rule": named["rule"],
        "Flags an account with": [RULES[r].format(threshold=t)
                                  for r, t in zip(named["rule"], named["threshold"], strict=True)],
        "Accounts flagged": named["flagged_accounts"].astype("Int64"),
        "Their sessions": named["flagged_sessions"].astype("Int64"),
        "Measure": [MEASURES[r] for r in named["rule"]],
        "Largest among the other accounts": named["largest_among_others"].astype("Int64"),
        "Smallest among the flagged": named["smallest_among_flagged"].astype("Int64"),  # none flagged: empty
    })


def justification(rules: pd.DataFrame) -> str:
    """Why the thresholds are where they are, from the data: the gap between the flagged and the rest."""
    parts = []
    for r in rules[rules["rule"].isin(list(RULES))].itertuples():
        others = fmt.count(r.largest_among_others)
        if r.flagged_accounts:
            parts.append(f"for the {r.rule} rule every other account has at most {others} {MEASURES[r.rule]} and the "
                         f"flagged at least {fmt.count(r.smallest_among_flagged)}, so any threshold between the two "
                         f"flags the same accounts (this one is {r.threshold})")
        else:
            parts.append(f"for the {r.rule} rule no account exceeds {r.threshold} (the largest has {others} "
                         f"{MEASURES[r.rule]})")
    return "On this export, " + "; ".join(parts) + "."


def flagged(rules: pd.DataFrame) -> pd.Series:
    """The `either` row: accounts and sessions flagged by any rule."""
    return rules.set_index("rule").loc["either"]
