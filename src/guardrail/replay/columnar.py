"""The columnar replay engine: the pack's IR compiled to Polars expressions over the whole
stream at once, with windows and history features as exact integer array arithmetic.

Semantics are the reference replay's (``sim.replay``), reproduced exactly:

- a row's history is the rows *before it in the stream* that were executed: background rows,
  legitimate requests, and fraud requests whose action stayed below ``intercept``;
- windows and history features are computed as of the row's own timestamp, in its branch's time
  zone, per customer / account / (customer, payee), with the live span semantics;
- whether a fraud row executed depends on its decision, which depends on earlier rows: the
  engine iterates "decide everything, update which rows executed" until nothing changes. Each
  row depends only on earlier rows, so the fixed point is the sequential replay's unique answer.

The stream must be in timestamp order with unique event ids (what ``guardrail simulate`` writes
and what live screening sees); anything else is refused with the row that breaks it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from guardrail.context.enrich import FeaturePlan
from guardrail.context.watchlist import Watchlist
from guardrail.lang.catalog import LOCAL_DATE_KEY
from guardrail.lang.declarations import Aggregate, Measure, Span, WindowKey, WindowSpec
from guardrail.lang.ir import All, AnyOf, Compare, Condition, FieldRef, Op, RefKind
from guardrail.lang.pack import Pack
from guardrail.model.event import DIRECTION_OF_KIND, Direction
from guardrail.replay.localtime import DAY_US, HOUR_US, civil, local_offsets, midnights
from guardrail.replay.plan import (
    ANY_TEXT,
    DERIVED_FROM_KIND,
    TEXT_COLUMNS,
    CompileError,
    ReplayPlan,
    column_of,
    compile_plan,
)
from guardrail.replay.result import INTERCEPT_RANK, Decisions, decide_rows
from guardrail.replay.table import StreamError

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Progress = Callable[[str], None]
ELDERLY_AGE = 60

_POLARS_OPS: dict[Op, Callable[[pl.Expr, Any], pl.Expr]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


def compile_expr(condition: Condition) -> pl.Expr:
    """IR to a Polars boolean expression. A comparison with a missing value is unknown and never
    fires (null → false); the IR has no negation, so this equals three-valued logic."""
    if isinstance(condition, Compare):
        left = pl.col(condition.left.key)
        right = (
            pl.col(condition.right.key)
            if isinstance(condition.right, FieldRef)
            else pl.lit(condition.right.value)
        )
        return _POLARS_OPS[condition.op](left, right).fill_null(False)
    parts = [compile_expr(item) for item in condition.items]
    if isinstance(condition, All):
        return reduce(operator.and_, parts)
    assert isinstance(condition, AnyOf)
    return reduce(operator.or_, parts)


def dense_rank(column: pl.Series) -> I64:
    """1.. per distinct value in sorted order; 0 for a missing value."""
    return column.rank("dense").fill_null(0).to_numpy().astype(np.int64)


def codes(*ranks: I64) -> I64:
    """One integer per distinct tuple of dense ranks; -1 where any value is missing."""
    code = np.zeros(len(ranks[0]), dtype=np.int64)
    valid = np.ones(len(ranks[0]), dtype=bool)
    for rank in ranks:
        valid &= rank > 0
        code = code * (int(rank.max(initial=0)) + 1) + rank
    return np.where(valid, code, -1)


class Series:
    """Rows grouped by a key, each group in stream order (which is timestamp order): the index
    structure behind every window. ``lower(start)`` is the first position of each row's group
    at or after ``start``; positions before a row's own are its history."""

    def __init__(self, key: I64, ts_rank: I64, ranks: int) -> None:
        self.key = key
        self.order = np.argsort(key, kind="stable")
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(key))
        self._composite = key[self.order] * (ranks + 1) + ts_rank[self.order]
        self._ranks = ranks

    def lower(self, start_rank: I64) -> I64:
        """First position in each row's group with timestamp rank >= ``start_rank``."""
        query = (self.key * (self._ranks + 1) + start_rank)[self.order]
        lo = np.empty_like(self.position)
        # needles in group order are nearly sorted, which binary search exploits
        lo[self.order] = np.searchsorted(self._composite, query, side="left")
        return np.minimum(lo, self.position)

    def before_sum(self, values: I64, lo: I64) -> I64:
        """Per row: sum of ``values`` over its group's positions [lo, own position)."""
        prefix = np.concatenate([[0], np.cumsum(values[self.order])])
        result: I64 = prefix[self.position] - prefix[lo]
        return result

    def pairs(self, lo: I64) -> tuple[I64, I64, I64]:
        """Every (row, history position) pair with position in [lo, own position): the rows'
        flat index, the positions, and the start offset of each row's run."""
        counts = self.position - lo
        total = int(counts.sum())
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rows = np.repeat(np.arange(len(lo)), counts)
        positions = np.arange(total) - np.repeat(starts, counts) + np.repeat(lo, counts)
        return rows, positions, starts

    def previous(self, member: Mask, group: I64) -> I64:
        """Per row: the position of the last ``member`` row before it in its group that has the
        same ``group`` value, or -1."""
        order = np.lexsort((self.position, group, self.key))
        sorted_key, sorted_group = self.key[order], group[order]
        boundary = np.ones(len(order), dtype=bool)
        boundary[1:] = (sorted_key[1:] != sorted_key[:-1]) | (sorted_group[1:] != sorted_group[:-1])
        gid = np.cumsum(boundary) - 1
        big = gid * (len(order) + 1)
        marks = np.where(member[order], self.position[order] + 1 + big, big)
        last = np.maximum.accumulate(marks) - big - 1
        previous = np.empty_like(last)
        previous[1:] = last[:-1]
        previous[boundary] = -1
        result: I64 = np.empty_like(previous)
        result[order] = previous
        return result


class ColumnarEngine:
    """Replays a stream table (``replay.table``) through a pack's compiled rules."""

    name = "columnar"

    def __init__(self, pack: Pack, watchlists: Mapping[str, Watchlist]) -> None:
        self.pack = pack
        self.plan: ReplayPlan = compile_plan(pack, self.name)
        missing = [r.name for r in self.plan.watchlist_refs if r.name not in watchlists]
        if missing:
            raise CompileError(self.name, [f"watchlist {name!r} is not loaded" for name in missing])
        self._watchlists = watchlists
        self._matcher = FeaturePlan(pack).matcher  # the live matcher: same terms, same folding
        self._rules = [compile_expr(rule.guarded) for rule in self.plan.rules]
        self._lexicon_hits: dict[str, tuple[I64, list[set[str]]]] = {}

    def run(self, frame: pl.DataFrame, progress: Progress | None = None) -> tuple[Decisions, Mask]:
        """Decisions of every row and which rows were executed (recorded as history)."""
        say = progress or (lambda _message: None)
        rows = Rows(frame)
        self._lexicon_hits = {}
        static = self.static_features(rows)
        screened = ~rows.background
        always = rows.background | rows.legitimate
        executed = np.ones(rows.n, dtype=bool)  # first guess: every request went through
        round_no = 0
        while True:
            round_no += 1
            history = self._history_features(rows, executed)
            features = static.with_columns(
                pl.Series(key, values) for key, values in history.items()
            )
            matrix = _matrix(features, self._rules, rows.n)
            matrix[~screened] = False
            decisions = decide_rows(self.pack, matrix, screened)
            settled = always | (decisions.action_rank < INTERCEPT_RANK)
            changed = int(np.count_nonzero(settled != executed))
            say(f"round {round_no}: {changed:,} rows changed executed status")
            if changed == 0:
                return decisions, executed
            executed = settled

    # -- features that do not depend on history ------------------------------------------------

    def static_features(self, rows: Rows) -> pl.DataFrame:
        frame = rows.frame
        refs = self.plan.refs
        columns: dict[str, pl.Series] = {}
        for key, ref in refs.items():
            if ref.kind is not RefKind.FIELD or key in self.plan.history_keys:
                continue
            if key == DERIVED_FROM_KIND:
                mapping = {kind.value: d.value for kind, d in DIRECTION_OF_KIND.items()}
                columns[key] = frame.get_column("kind").replace_strict(mapping).alias(key)
            elif key in _DERIVED:
                columns[key] = pl.Series(key, _DERIVED[key](rows))
            else:
                columns[key] = frame.get_column(column_of(key)).alias(key)
        for ref in self.plan.lexicon_refs:
            columns[ref.key] = self._lexicon(rows, ref)
        for ref in self.plan.watchlist_refs:
            columns[ref.key] = self._watchlist(rows, ref)
        return (
            pl.DataFrame(list(columns.values()))
            if columns
            else pl.DataFrame({"_": np.zeros(rows.n, dtype=bool)})
        )

    def _lexicon(self, rows: Rows, ref: FieldRef) -> pl.Series:
        found = self._lexicon_hits.get(ref.field)
        if found is None:
            texts = rows.text(ref.field)
            unique = texts.unique().sort()
            code = texts.rank("dense").to_numpy().astype(np.int64) - 1
            names = [
                {hit.lexicon for hit in self._matcher.find(text, ref.field)}
                for text in unique.to_list()
            ]
            found = self._lexicon_hits[ref.field] = (code, names)
        code, names = found
        flags = np.array([ref.name in hit for hit in names], dtype=bool)
        return pl.Series(ref.key, flags[code] if len(code) else flags[:0])

    def _watchlist(self, rows: Rows, ref: FieldRef) -> pl.Series:
        listed = self._watchlists[ref.name]
        values = rows.frame.get_column(column_of(ref.field))
        # Plain ASCII digits, letters, spaces and dashes normalise by dropping the spaces and
        # dashes and lower-casing (what NFKC + case-folding do to them); anything else goes
        # through the live normaliser itself.
        plain = values.str.contains(r"^[0-9A-Za-z +\-]*$").fill_null(False)
        simple = values.str.replace_all(r"[ \-]", "").str.to_lowercase()
        entries = pl.Series(sorted(listed.entries), dtype=pl.String)
        member = simple.is_in(entries.implode()).fill_null(False).to_numpy()
        others = values.filter(~plain & values.is_not_null()).unique().to_list()
        if others:
            odd = {value: listed.contains(str(value)) for value in others}
            slow = values.replace_strict(odd, default=False, return_dtype=pl.Boolean)
            member = np.where(plain.to_numpy(), member, slow.fill_null(False).to_numpy())
        return _nullable(member, values.is_not_null().to_numpy()).alias(ref.key)

    # -- features over executed history ----------------------------------------------------------

    def _history_features(self, rows: Rows, executed: Mask) -> dict[str, Any]:
        out: dict[str, Any] = {}
        keys = self.plan.history_keys
        if "counterparty.first_seen" in keys:
            series = rows.series("customer.id", "counterparty.account")
            lo = series.lower(np.zeros(rows.n, dtype=np.int64))
            seen = series.before_sum(executed.astype(np.int64), lo)
            out["counterparty.first_seen"] = _nullable(seen == 0, rows.has_payee)
        if keys & {"history.inbound_24h", "history.inbound_24h_pct"}:
            inbound_in = executed & (rows.direction == Direction.IN.value)
            by_account = rows.series("account.id", "amount.currency")
            by_customer = rows.series("customer.id", "amount.currency")
            start = rows.rank(rows.ts - DAY_US)
            amounts = np.where(inbound_in, rows.amount, 0)
            inbound = np.where(
                rows.has_account,
                by_account.before_sum(amounts, by_account.lower(start)),
                by_customer.before_sum(amounts, by_customer.lower(start)),
            )
            out["history.inbound_24h"] = inbound
            zero = rows.amount == 0
            pct = inbound * 100 // np.where(zero, 1, rows.amount)
            out["history.inbound_24h_pct"] = _nullable(pct, ~zero)
        if "history.outbound_count_24h" in keys:
            series = rows.series("customer.id")
            out_rows = (executed & (rows.direction == Direction.OUT.value)).astype(np.int64)
            out["history.outbound_count_24h"] = series.before_sum(
                out_rows, series.lower(rows.rank(rows.ts - DAY_US))
            )
        if "history.same_payee_count_today" in keys:
            series = rows.series("customer.id", "counterparty.account")
            count = series.before_sum(
                executed.astype(np.int64), series.lower(rows.rank(rows.midnight))
            )
            out["history.same_payee_count_today"] = np.where(rows.has_payee, count, 0)
        for key, spec in self.plan.windows.items():
            out[key] = window(spec, rows, executed)
        return {k: v for k, v in out.items() if k in keys}


def _nullable(values: Any, present: Mask) -> pl.Series:
    return pl.Series(values).set(pl.Series(~present), None)


def _matrix(features: pl.DataFrame, rules: list[pl.Expr], rows: int) -> Mask:
    """rows × rules: whether each rule's condition holds."""
    if not rules:
        return np.zeros((rows, 0), dtype=bool)
    hits = features.select(rule.alias(f"r{index}") for index, rule in enumerate(rules))
    return np.ascontiguousarray(hits.to_numpy(), dtype=bool)


class Rows:
    """The stream table as arrays, with the derived columns every window shares."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        self.n = frame.height
        self.ts: I64 = frame.get_column("timestamp").dt.epoch("us").to_numpy().astype(np.int64)
        if self.n > 1:
            back = np.flatnonzero(self.ts[1:] < self.ts[:-1])
            if len(back):
                row = int(back[0]) + 2
                raise StreamError(
                    f"row {row}: timestamp earlier than the row before; the columnar engines "
                    "replay a stream in timestamp order (sort it, or use --engine reference)"
                )
        duplicated = frame.get_column("event_id").is_duplicated()
        if duplicated.any():
            row = int(duplicated.arg_true()[0]) + 1
            raise StreamError(
                f"row {row}: event id {frame.get_column('event_id')[row - 1]!r} repeats; the "
                "columnar engines need unique event ids (or use --engine reference)"
            )
        self.background = (
            (frame.get_column("executed_history_hint") == "always").fill_null(False).to_numpy()
        )
        self.legitimate = (frame.get_column("label") == "legitimate").to_numpy()
        self.amount: I64 = frame.get_column("amount.fen").to_numpy().astype(np.int64)
        kinds = frame.get_column("kind")
        mapping = {kind.value: d.value for kind, d in DIRECTION_OF_KIND.items()}
        self.direction = kinds.replace_strict(mapping).to_numpy()
        self.kind = kinds.to_numpy()
        self.channel = frame.get_column("channel").to_numpy()
        self.currency = frame.get_column("amount.currency").to_numpy()
        self.has_account = frame.get_column("account").to_numpy()
        self.has_payee = frame.get_column("counterparty.account").is_not_null().to_numpy()
        self._unique_ts = np.unique(self.ts)
        self._series: dict[tuple[str, ...], Series] = {}
        self.ts_rank = self.rank(self.ts)
        zone_names = frame.get_column("branch.timezone")
        self.zone_list: list[str] = zone_names.unique(maintain_order=True).to_list()
        self.zone_code: I64 = (
            zone_names.replace_strict(self.zone_list, list(range(len(self.zone_list))))
            .to_numpy()
            .astype(np.int64)
        )
        try:
            offsets = local_offsets(self.zone_code, self.zone_list, self.ts)
        except ValueError as error:
            raise StreamError(f"column 'branch.timezone': {error}") from None
        local = self.ts + offsets
        self.local_day: I64 = local // DAY_US
        self.local_hour: I64 = (local - self.local_day * DAY_US) // HOUR_US
        self.midnight: I64 = midnights(self.zone_code, self.zone_list, self.local_day)
        self._ranks: dict[str, I64] = {}
        self.window_parts: dict[str, tuple[I64, Mask]] = {}  # static per window: start, filter

    def rank(self, instants: I64) -> I64:
        """How many distinct row timestamps lie before each instant."""
        return np.searchsorted(self._unique_ts, instants, side="left").astype(np.int64)

    def series(self, *columns: str) -> Series:
        found = self._series.get(columns)
        if found is None:
            key = codes(*(self.ranks(c) for c in columns))
            found = self._series[columns] = Series(key, self.ts_rank, len(self._unique_ts))
        return found

    def ranks(self, column: str) -> I64:
        found = self._ranks.get(column)
        if found is None:
            found = self._ranks[column] = dense_rank(self.frame.get_column(column))
        return found

    @property
    def payee_code(self) -> I64:
        return codes(self.ranks("counterparty.account"))

    def days(self, column: str) -> tuple[I64, Mask]:
        values = self.frame.get_column(column)
        present = values.is_not_null().to_numpy()
        days = values.cast(pl.Int32).fill_null(0).to_numpy().astype(np.int64)
        return days, present

    def text(self, field: str) -> pl.Series:
        frame = self.frame
        if field == ANY_TEXT:
            parts = [pl.col(c).fill_null("") for c in TEXT_COLUMNS.values()]
            joined = frame.select(
                pl.concat_list(parts)
                .list.eval(pl.element().filter(pl.element() != ""))
                .list.join("\n")
                .alias(field)
            )
            return joined.get_column(field)
        return frame.get_column(TEXT_COLUMNS[field]).fill_null("")


# -- derived features of the event alone, on the branch's calendar ------------------------------


def _local_date(rows: Rows) -> pl.Series:
    year, month, day = civil(rows.local_day)
    return pl.Series(year * 10000 + month * 100 + day)


def _age(rows: Rows) -> pl.Series:
    birth, present = rows.days("customer.birth_date")
    by, bm, bd = civil(birth)
    ty, tm, td = civil(rows.local_day)
    age = ty - by - ((tm < bm) | ((tm == bm) & (td < bd))).astype(np.int64)
    return _nullable(age, present)


def _is_elderly(rows: Rows) -> pl.Series:
    return _age(rows) >= ELDERLY_AGE


def _days_since(column: str) -> Callable[[Rows], pl.Series]:
    def compute(rows: Rows) -> pl.Series:
        days, present = rows.days(column)
        return _nullable(rows.local_day - days, present)

    return compute


def _province(column: pl.Expr) -> pl.Expr:
    return column.str.split("-").list.head(2).list.join("-")


def _other_region(rows: Rows) -> pl.Series:
    return rows.frame.select(
        (_province(pl.col("counterparty.region")) != _province(pl.col("branch.region"))).alias("x")
    ).get_column("x")


_DERIVED: dict[str, Callable[[Rows], pl.Series]] = {
    LOCAL_DATE_KEY: _local_date,
    "event.local_hour": lambda rows: pl.Series(rows.local_hour),
    "customer.age": _age,
    "customer.is_elderly": _is_elderly,
    "account.age_days": _days_since("account.opened_on"),
    "account.days_since_last_activity": _days_since("account.last_activity_on"),
    "counterparty.other_region": _other_region,
}


# -- windows -------------------------------------------------------------------------------------


def _start_rank(spec: WindowSpec, rows: Rows) -> I64:
    if spec.span is Span.SAME_DAY:
        return rows.rank(rows.midnight)
    if spec.span is Span.HOURS:
        return rows.rank(rows.ts - (spec.length or 0) * HOUR_US)
    if spec.span is Span.DAYS:
        return rows.rank(rows.ts - (spec.length or 0) * DAY_US)
    # since the branch-local midnight of the opening day; without an account, everything
    opened, present = rows.days("account.opened_on")
    start = rows.rank(midnights(rows.zone_code, rows.zone_list, opened))
    return np.where(present, start, 0)


def _passes(spec: WindowSpec, rows: Rows) -> Mask:
    """Rows whose record passes the window's kind, direction, channel and currency filters."""
    keep = np.ones(rows.n, dtype=bool)
    if spec.kinds:
        keep &= np.isin(rows.kind, [kind.value for kind in spec.kinds])
    if spec.direction is not None:
        keep &= rows.direction == spec.direction.value
    if spec.channels:
        keep &= np.isin(rows.channel, [channel.value for channel in spec.channels])
    currency = spec.effective_currency
    if currency is not None:
        keep &= rows.currency == currency.value
    return keep


def window(spec: WindowSpec, rows: Rows, executed: Mask) -> I64:
    """The value of ``spec`` for every row, as live screening computes it for that row."""
    cached = rows.window_parts.get(spec.name)
    if cached is None:
        cached = rows.window_parts[spec.name] = (_start_rank(spec, rows), _passes(spec, rows))
    start, passes = cached
    if spec.key is WindowKey.COUNTERPARTY:
        value = _over(
            spec, rows, rows.series("customer.id", "counterparty.account"), start, passes, executed
        )
        return np.where(rows.has_payee, value, 0)
    by_customer = _over(spec, rows, rows.series("customer.id"), start, passes, executed)
    if spec.key is WindowKey.ACCOUNT:
        by_account = _over(spec, rows, rows.series("account.id"), start, passes, executed)
        return np.where(rows.has_account, by_account, by_customer)
    return by_customer


def _over(
    spec: WindowSpec, rows: Rows, series: Series, start: I64, passes: Mask, executed: Mask
) -> I64:
    lo = series.lower(start)
    records = passes & executed
    current = passes if spec.include_current else np.zeros(rows.n, dtype=bool)
    aggregate = spec.aggregate
    if aggregate is Aggregate.SUM:
        return series.before_sum(np.where(records, rows.amount, 0), lo) + np.where(
            current, rows.amount, 0
        )
    if aggregate is Aggregate.COUNT:
        counted = records & rows.has_payee if spec.measure is Measure.COUNTERPARTY else records
        mine = current & rows.has_payee if spec.measure is Measure.COUNTERPARTY else current
        return series.before_sum(counted.astype(np.int64), lo) + mine.astype(np.int64)
    if aggregate is Aggregate.MAX:
        values = np.where(records, rows.amount, 0)[series.order]
        best = range_max(series, values, lo)
        return np.maximum(best, np.where(current, rows.amount, 0))
    # count_distinct payee accounts: a history record counts when no earlier record of the
    # same payee lies inside the row's window; the row itself when none lies there at all.
    members = records & rows.has_payee
    previous = series.previous(members, rows.payee_code)
    distinct = first_occurrences(series, members, previous, lo)
    own = current & rows.has_payee & (previous < lo)
    total: I64 = distinct + own.astype(np.int64)
    return total


# Windows whose history runs (summed over rows) exceed this many times the row count use the
# O(n log n) structures instead of visiting every (row, history record) pair.
_PAIRS_PER_ROW = 4


def range_max(series: Series, values: I64, lo: I64) -> I64:
    """Per row: max of ``values`` (in series order) over [lo, own position), 0 when empty."""
    hi = series.position
    lengths = hi - lo
    best = np.zeros(len(lo), dtype=np.int64)
    nonempty = lengths > 0
    if not nonempty.any():
        return best
    if int(lengths.sum()) <= _PAIRS_PER_ROW * len(lo):
        _, positions, starts = series.pairs(lo)
        best[nonempty] = np.maximum.reduceat(values[positions], starts[nonempty])
        return best
    # sparse table: level k holds the max of each run of 2**k values
    levels = [values]
    while (1 << len(levels)) <= len(values):
        half = 1 << (len(levels) - 1)
        previous = levels[-1]
        levels.append(np.maximum(previous[:-half], previous[half:]))
    rows = np.flatnonzero(nonempty)
    span = lengths[rows]
    level = np.floor(np.log2(span)).astype(np.int64)
    for k in np.unique(level).tolist():
        chosen = rows[level == k]
        table = levels[k]
        left = table[lo[chosen]]
        right = table[hi[chosen] - (1 << k)]
        best[chosen] = np.maximum(left, right)
    return best


def first_occurrences(series: Series, members: Mask, previous: I64, lo: I64) -> I64:
    """Per row: how many ``members`` in [lo, own position) have no member of the same group
    before them inside that range (``previous`` < lo): the distinct values in the window."""
    hi = series.position
    total = int((hi - lo).sum())
    sorted_members = members[series.order]
    sorted_previous = previous[series.order]
    if total <= _PAIRS_PER_ROW * len(lo):
        owner, positions, _ = series.pairs(lo)
        first = sorted_members[positions] & (sorted_previous[positions] < lo[owner])
        return np.bincount(owner, weights=first, minlength=len(lo)).astype(np.int64)
    # members before hi whose previous is before lo, minus members before lo (all of which
    # have their previous before lo): a dominance count over a merge-sort tree.
    n = len(lo)
    y = np.where(sorted_members, sorted_previous + 1, n + 2)
    below_hi = prefix_count_at_most(y, hi, lo)
    member_prefix = np.concatenate([[0], np.cumsum(sorted_members.astype(np.int64))])
    distinct: I64 = below_hi - member_prefix[lo]
    return distinct


def prefix_count_at_most(y: I64, x_end: I64, y_max: I64) -> I64:
    """For each query q: how many i < x_end[q] have y[i] <= y_max[q] (values of y in 0..n+2)."""
    n = len(y)
    scale = n + 3
    counts = np.zeros(len(x_end), dtype=np.int64)
    index = np.arange(n, dtype=np.int64)
    level, size = 0, 1
    while size <= n:
        block = index // size
        ordered = np.sort(block * scale + y)
        chosen = np.flatnonzero((x_end >> level) & 1)
        if len(chosen):
            first = ((x_end[chosen] >> (level + 1)) << (level + 1)) // size
            counts[chosen] += (
                np.searchsorted(ordered, first * scale + y_max[chosen], side="right") - first * size
            )
        level, size = level + 1, size * 2
    return counts
