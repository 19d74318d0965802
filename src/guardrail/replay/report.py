"""The replay report and the per-event decisions file of a bulk (columnar or Spark) replay:
the same ``ReplayReport`` the reference replay prints, counted from arrays."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from guardrail.lang.pack import Pack
from guardrail.model.decision import Action
from guardrail.replay.result import ACTIONS, Decisions
from guardrail.sim.replay import (
    FRICTION,
    INTERCEPT,
    REVIEW,
    GroupOutcome,
    ReplayError,
    ReplayReport,
    RuleHits,
)

UNSPECIFIED = "(unspecified)"


def _ratio(part: int, whole: int) -> float:
    return 0.0 if whole == 0 else part / whole


def _groups(names: pl.Series, ranks: np.ndarray) -> dict[str, GroupOutcome]:
    frame = pl.DataFrame({"name": names.fill_null(UNSPECIFIED), "rank": ranks})
    counted = (
        frame.group_by("name")
        .agg(
            pl.len().alias("events"),
            (pl.col("rank") >= INTERCEPT.rank).sum().alias("intercept"),
            (pl.col("rank") >= REVIEW.rank).sum().alias("review"),
            (pl.col("rank") >= FRICTION.rank).sum().alias("inquire"),
        )
        .sort("name")
    )
    result = {}
    for name, events, intercept, review, inquire in counted.iter_rows():
        result[name] = GroupOutcome(
            events,
            intercept,
            review,
            inquire,
            _ratio(intercept, events),
            _ratio(review, events),
            _ratio(inquire, events),
        )
    return result


def build_report(
    pack: Pack,
    frame: pl.DataFrame,
    decisions: Decisions,
    executed: np.ndarray,
    backend: str,
    seconds: float,
    bad: list[ReplayError] | None = None,
) -> ReplayReport:
    """The report the reference replay gives for the same stream and decisions."""
    bad = bad or []
    screened = decisions.combo >= 0
    ranks = decisions.action_rank
    fraud = (frame.get_column("label") == "fraud").to_numpy() & screened
    legitimate = screened & ~fraud
    per_combo = np.bincount(decisions.combo[screened], minlength=len(decisions.combos))
    fraud_combo = np.bincount(decisions.combo[fraud], minlength=len(decisions.combos))
    hits: Counter[str] = Counter()
    on_fraud: Counter[str] = Counter()
    for index, rule_ids in enumerate(decisions.combos):
        for rule_id in rule_ids:
            hits[rule_id] += int(per_combo[index])
            on_fraud[rule_id] += int(fraud_combo[index])
    action_counts = np.bincount(ranks[screened], minlength=len(ACTIONS))
    n_screened = int(screened.sum())
    rules = {
        rule_id: RuleHits(
            count, _ratio(count, n_screened), on_fraud[rule_id], count - on_fraud[rule_id]
        )
        for rule_id, count in sorted(hits.items())
        if count
    }
    typologies = _groups(frame.get_column("typology").filter(pl.Series(fraud)), ranks[fraud])
    scenarios = _groups(
        frame.get_column("scenario").filter(pl.Series(legitimate)), ranks[legitimate]
    )
    intercepted = sum(g.at_least_intercept for g in typologies.values())
    reviewed = sum(g.at_least_review for g in typologies.values())
    inquired = sum(g.at_least_inquire for g in scenarios.values())
    n_fraud, n_legit = int(fraud.sum()), int(legitimate.sum())
    events = frame.height
    return ReplayReport(
        pack=pack.ref.name,
        pack_version=pack.ref.version,
        pack_hash=pack.content_hash,
        backend=backend,
        events=events,
        screened=n_screened,
        background=events - n_screened,
        recorded=int(executed.sum()),
        bad_lines=len(bad),
        first_bad_line=str(bad[0]) if bad else None,
        failures=0,
        actions={action.value: int(action_counts[action.rank]) for action in Action},
        rules=rules,
        fraud_events=n_fraud,
        legitimate_events=n_legit,
        intercepted_fraud=intercepted,
        reviewed_fraud=reviewed,
        inquired_legitimate=inquired,
        recall_intercept=_ratio(intercepted, n_fraud),
        recall_review=_ratio(reviewed, n_fraud),
        friction_rate=_ratio(inquired, n_legit),
        typologies=typologies,
        legitimate_scenarios=scenarios,
        # without 'when_asked' lines (refused by the bulk engines) nothing is asked again, and
        # the action after answers is the first screening's
        asked=0,
        intercepted_fraud_after_answers=intercepted,
        reviewed_fraud_after_answers=reviewed,
        inquired_legitimate_after_answers=inquired,
        recall_intercept_after_answers=_ratio(intercepted, n_fraud),
        recall_review_after_answers=_ratio(reviewed, n_fraud),
        friction_rate_after_answers=_ratio(inquired, n_legit),
        typologies_after_answers=typologies,
        legitimate_scenarios_after_answers=scenarios,
        seconds=round(seconds, 3),
        events_per_second=round(events / seconds, 1) if seconds > 0 else 0.0,
    )


def decisions_frame(
    frame: pl.DataFrame, decisions: Decisions, executed: np.ndarray
) -> pl.DataFrame:
    """One row per screened event: line, event id, action, obligations, hit rule ids, and
    whether the replay recorded it as executed."""
    screened = decisions.combo >= 0
    combo = decisions.combo[screened]
    actions = [ACTIONS[rank].value for rank in decisions.combo_action.tolist()]
    obligations = [[o.value for o in owed] for owed in decisions.combo_obligations]
    rule_ids = [list(ids) for ids in decisions.combos]
    index = pl.Series("combo", combo)
    return pl.DataFrame(
        {
            "line": np.flatnonzero(screened) + 1,
            "event_id": frame.get_column("event_id").filter(pl.Series(screened)),
            "action": index.replace_strict(list(range(len(actions))), actions),
            "obligations": index.replace_strict(
                list(range(len(obligations))), obligations, return_dtype=pl.List(pl.String)
            ),
            "rule_ids": index.replace_strict(
                list(range(len(rule_ids))), rule_ids, return_dtype=pl.List(pl.String)
            ),
            "executed": executed[screened],
        }
    )


def write_decisions(table: pl.DataFrame, path: str | Path) -> None:
    """Write the decisions table as Parquet (to a temporary name first: never half a file)."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    table.write_parquet(partial, compression="zstd")
    partial.replace(target)
