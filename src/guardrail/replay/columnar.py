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
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from enum import Enum
from functools import cached_property, partial, reduce
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl
from numpy._core import multiarray

from guardrail.context.enrich import MANY_VALUED, FeaturePlan, counter_context, many_values
from guardrail.context.watchlist import Watchlist
from guardrail.lang.catalog import LOCAL_DATE_KEY, REGION_KEY_PREFIX
from guardrail.lang.declarations import Aggregate, Measure, Span, WindowKey, WindowSpec
from guardrail.lang.ir import All, AnyOf, Compare, Condition, Const, FieldRef, Op, RefKind
from guardrail.lang.pack import CompiledRule, Pack
from guardrail.model.event import DIRECTION_OF_KIND, Direction
from guardrail.replay.localtime import DAY_US, HOUR_US, civil, local_offsets, midnights
from guardrail.replay.plan import (
    ANY_TEXT,
    COUNTER_COLUMNS,
    COUNTER_KEYS,
    DERIVED_FROM_KIND,
    TEXT_COLUMNS,
    CompileError,
    ReplayPlan,
    column_of,
    compile_plan,
)
from guardrail.replay.result import INTERCEPT_RANK, Decisions, decide_packed
from guardrail.replay.table import StreamError, event_of_row

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Progress = Callable[[str], None]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
# Threads for the feature work: NumPy and Polars release the GIL for their array work, so the
# event's own features and the windows run side by side on the machine's cores.
WORKERS = 2
ELDERLY_AGE = 60
_KINDS_OF = {
    direction: [kind.value for kind, d in DIRECTION_OF_KIND.items() if d is direction]
    for direction in Direction
}

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


@contextmanager
def small_pages() -> Iterator[None]:
    """NumPy's huge-page hint off for the arrays made inside the block. The engine makes
    hundreds of short-lived arrays of a few MB; where the kernel compacts memory to serve a
    huge-page fault (transparent huge pages with defrag "madvise", as on the benchmark
    machine) those faults cost more than huge pages save: on 1,000,000 events, system time
    fell from 5.7 s to 2.5 s with the hint off."""
    setter: Callable[[bool], bool] | None = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is None:  # a NumPy without the switch: leave its default
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


class Memo(Generic[K, V]):
    """Values computed once per key, also when several threads ask at once: the first computes,
    the others wait for its value (and compute it themselves if it failed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[K, V] = {}
        self._pending: dict[K, threading.Event] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        while True:
            with self._lock:
                if key in self._values:
                    return self._values[key]
                pending = self._pending.get(key)
                if pending is None:
                    done = self._pending[key] = threading.Event()
                    break
            pending.wait()
        try:
            value = compute()
            with self._lock:
                self._values[key] = value
        finally:
            with self._lock:
                del self._pending[key]
            done.set()
        return value


def dense_rank(column: pl.Series) -> I64:
    """1..k per distinct value (in no particular order); 0 for a missing value."""
    physical = column.cast(pl.Categorical).to_physical()
    present = physical.is_not_null().to_numpy()
    code = physical.fill_null(0).to_numpy().astype(np.int64)
    used = np.zeros(int(code.max(initial=0)) + 1, dtype=bool)
    used[code[present]] = True
    relabel = np.cumsum(used)  # dense: the categories seen in this column only
    result: I64 = np.where(present, relabel[code], 0)
    return result


_CODE_LIMIT = 1 << 62


def codes(*ranks: I64) -> I64:
    """One integer per distinct tuple of dense ranks; -1 where any value is missing."""
    code = np.zeros(len(ranks[0]), dtype=np.int64)
    valid = np.ones(len(ranks[0]), dtype=bool)
    for rank in ranks:
        valid &= rank > 0
        width = int(rank.max(initial=0)) + 1
        if int(code.max(initial=0)) + 1 >= _CODE_LIMIT // width:  # keep the product exact
            code = np.unique(code, return_inverse=True)[1].reshape(-1).astype(np.int64)
        code = code * width + rank
    return np.where(valid, code, -1)


def stable_order(key: I64) -> I64:
    """``np.argsort(key, kind="stable")``."""
    return stable_sort(key)[0]


def stable_sort(key: I64) -> tuple[I64, I64]:
    """``np.argsort(key, kind="stable")`` and ``key`` in that order: when key and row number
    fit in one int64, from an unstable sort of ``key * n + row`` (NumPy's vectorised sort,
    several times faster, and the sorted keys come without a random-access gather)."""
    n = len(key)
    if n == 0:
        return np.zeros(0, dtype=np.int64), key.copy()
    low, high = int(key.min()), int(key.max())
    if (high - low + 1) * n >= _CODE_LIMIT:
        order = np.argsort(key, kind="stable").astype(np.int64)
        return order, key[order]
    tagged = (key - low) * n + np.arange(n, dtype=np.int64)
    tagged.sort()
    sorted_key, order = np.divmod(tagged, n)
    sorted_key += low
    return order, sorted_key


class Series:
    """Rows grouped by a key, each group in stream order (which is timestamp order): the index
    structure behind every window. ``lower(start)`` is the first position of each row's group
    at or after ``start``; positions before a row's own are its history."""

    def __init__(self, key: I64, ts_rank: I64, ranks: int) -> None:
        self.key = key
        self.order, sorted_key = stable_sort(key)
        self.position = np.empty_like(self.order)
        # 0..n-1, made once: a fresh array of this size costs more in page faults than in
        # arithmetic
        self._numbers = np.arange(len(key), dtype=np.int64)
        self.position[self.order] = self._numbers
        self._sorted_key = sorted_key
        self._composite = sorted_key * (ranks + 1) + ts_rank[self.order]
        self._ranks = ranks
        # what does not depend on which rows executed, kept across fixed-point rounds
        self._lower: Memo[str, I64] = Memo()
        self._lower_sorted: Memo[str, I64] = Memo()
        self._runs: Memo[str, tuple[I64, I64, I64, Mask]] = Memo()  # per window: its sort

    def lower(self, start_rank: I64, start_name: str | None = None) -> I64:
        """First position in each row's group with timestamp rank >= ``start_rank``; kept
        under ``start_name`` when given (the same start asked again returns the same array)."""

        def compute() -> I64:
            lo = np.empty_like(self.position)
            lo[self.order] = self.lower_in_order(start_rank, start_name)
            return lo

        return compute() if start_name is None else self._lower.get(start_name, compute)

    def lower_in_order(self, start_rank: I64, start_name: str | None = None) -> I64:
        """``lower`` in group order (element k belongs to row ``order[k]``)."""

        def compute() -> I64:
            query = self._sorted_key * (self._ranks + 1) + start_rank[self.order]
            # needles in group order are nearly sorted, which binary search exploits
            lo = np.searchsorted(self._composite, query, side="left")
            result: I64 = np.minimum(lo, self._numbers)
            return result

        return compute() if start_name is None else self._lower_sorted.get(start_name, compute)

    def before_sum(self, values: I64, lo: I64) -> I64:
        """Per row: sum of ``values`` over its group's positions [lo, own position)."""
        prefix = np.concatenate([[0], np.cumsum(values[self.order])])
        result: I64 = prefix[self.position] - prefix[lo]
        return result

    def window_sum(self, values: I64, start_rank: I64, start_name: str) -> I64:
        """``before_sum(values, lower(start_rank, start_name))``, in group order until the end:
        one gather into and one scatter out of group order."""
        lo = self.lower_in_order(start_rank, start_name)
        prefix = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(values[self.order], out=prefix[1:])
        result: I64 = np.empty(len(values), dtype=np.int64)
        result[self.order] = prefix[:-1] - prefix[lo]
        return result

    def pairs(self, lo: I64) -> tuple[I64, I64, I64]:
        """Every (row, history position) pair with position in [lo, own position): the rows'
        flat index, the positions, and the start offset of each row's run."""
        counts = self.position - lo
        total = int(counts.sum())
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rows = np.repeat(self._numbers, counts)
        positions = np.arange(total) - np.repeat(starts, counts) + np.repeat(lo, counts)
        return rows, positions, starts

    def previous(self, member: Mask, group: I64, scope: Mask, name: str) -> I64:
        """Per row of ``scope``: the position of the last ``member`` row before it in its
        group with the same ``group`` value, or -1 (also outside ``scope``, which must hold
        every member). The sort of ``scope`` is kept under ``name``."""

        def sort() -> tuple[I64, I64, I64, Mask]:
            inside = np.flatnonzero(scope)  # stream order, which is position order in a group
            width = int(group.max(initial=0)) + 2
            lowest = int(self.key.min(initial=0))
            composite = (self.key[inside] - lowest) * width + (group[inside] + 1)
            by = np.argsort(composite, kind="stable")
            order, composite = inside[by], composite[by]
            boundary = np.ones(len(order), dtype=bool)
            boundary[1:] = composite[1:] != composite[:-1]
            big = (np.cumsum(boundary) - 1) * (len(self.key) + 1)
            return order, big, self.position[order] + 1 + big, boundary

        order, big, marked, boundary = self._runs.get(name, sort)
        last = np.maximum.accumulate(np.where(member[order], marked, big)) - big - 1
        previous = np.empty_like(last)
        previous[1:] = last[:-1]
        previous[boundary] = -1
        result: I64 = np.full(len(self.key), -1, dtype=np.int64)
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
        self._packed = _packed_hits(self._rules)
        # text features only tested for (in)equality with constants: compared as categoricals
        self._categorical = _equality_only(self.plan.rules)
        # per run: rows with any hit, their texts, and the hitting texts of each lexicon
        self._lexicon_hits: dict[str, tuple[I64, pl.Series, dict[str, list[str]]]] = {}
        # per run: a column's distinct plain values, their normal forms, the other values
        self._normal_values: dict[str, tuple[pl.Series, pl.Series, list[Any]]] = {}

    def run(self, frame: pl.DataFrame, progress: Progress | None = None) -> tuple[Decisions, Mask]:
        """Decisions of every row and which rows were executed (recorded as history)."""
        say = progress or (lambda _message: None)
        rows = Rows(frame)
        self._lexicon_hits = {}
        self._normal_values = {}
        executed = np.ones(rows.n, dtype=bool)  # first guess: every request went through
        with small_pages(), ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return self._settle(rows, executed, pool, say)

    def _settle(
        self, rows: Rows, executed: Mask, pool: Executor, say: Progress
    ) -> tuple[Decisions, Mask]:
        screened = ~rows.background
        always = rows.background | rows.legitimate
        static_features = pool.submit(self.static_features, rows)
        history = self._history_features(rows, executed, pool)
        static = static_features.result()
        static = static.with_columns(
            pl.col(key).cast(pl.Categorical)
            for key, dtype in static.schema.items()
            if key in self._categorical and dtype == pl.String
        )
        say("features ready")
        packed = _evaluate(static.with_columns(history.values()), self._packed)
        packed[~screened] = 0
        decisions = decide_packed(self.pack, packed, screened)
        ranks = decisions.action_rank
        stale = False  # whether ``decisions`` lags behind ``packed``
        round_no = 1
        while True:
            settled = always | (ranks < INTERCEPT_RANK)
            changed = int(np.count_nonzero(settled != executed))
            say(f"round {round_no}: {changed:,} rows changed executed status")
            if changed == 0:
                break
            flipped = settled != executed
            executed = settled
            round_no += 1
            # only rows whose history features moved can decide differently
            again = self._history_features(rows, executed, pool, history, flipped)
            moved = np.zeros(rows.n, dtype=bool)
            for key, values in again.items():
                if values is not history[key]:
                    moved |= values.ne_missing(history[key]).to_numpy()
            history = again
            moved &= screened
            if not moved.any():
                continue
            where = np.flatnonzero(moved)
            index = pl.Series(where)
            features = static[index].with_columns(v.gather(index) for v in history.values())
            packed[where] = _evaluate(features, self._packed)
            ranks = ranks.copy()
            ranks[where] = decide_packed(self.pack, packed[where], screened[where]).action_rank
            stale = True
        if stale:
            decisions = decide_packed(self.pack, packed, screened)
        return decisions, executed

    # -- features that do not depend on history ------------------------------------------------

    def static_features(self, rows: Rows) -> pl.DataFrame:
        frame = rows.frame
        refs = self.plan.refs
        columns: dict[str, pl.Series] = {}
        columns.update(self._counter_context(rows))
        for key, ref in refs.items():
            if ref.kind is not RefKind.FIELD or key in self.plan.history_keys or key in columns:
                continue
            if key == DERIVED_FROM_KIND:
                mapping = {kind.value: d.value for kind, d in DIRECTION_OF_KIND.items()}
                columns[key] = frame.get_column("kind").replace_strict(mapping).alias(key)
            elif key in _DERIVED:
                columns[key] = pl.Series(key, _DERIVED[key](rows))
            elif key.startswith(REGION_KEY_PREFIX):
                depth = int(key.removeprefix(REGION_KEY_PREFIX))
                columns[key] = _region_prefix(frame.get_column("branch.region"), depth).alias(key)
            else:
                columns[key] = frame.get_column(column_of(key)).alias(key)
        for ref in self.plan.lexicon_refs:
            columns[ref.key] = self._lexicon(rows, ref)
        for ref in self.plan.watchlist_refs:
            if ref.field not in MANY_VALUED:
                columns[ref.key] = self._watchlist(rows, ref)
        return (
            pl.DataFrame(list(columns.values()))
            if columns
            else pl.DataFrame({"_": np.zeros(rows.n, dtype=bool)})
        )

    def _counter_context(self, rows: Rows) -> dict[str, pl.Series]:
        """Counter-context features and watchlist tests on many-valued fields (every third
        party's phone): computed by the live code on one representative row per distinct
        combination of the columns they read (most rows share the one without any of them)."""
        keys = [
            k for k, r in self.plan.refs.items() if r.kind is RefKind.FIELD and k in COUNTER_KEYS
        ]
        watched = [r for r in self.plan.watchlist_refs if r.field in MANY_VALUED]
        if not keys and not watched:
            return {}
        # each row's representative: the first row with the same values (nulls equal)
        first = (
            rows.frame.select(COUNTER_COLUMNS)
            .with_row_index("_row")
            .select(pl.col("_row").first().over(COUNTER_COLUMNS))
            .to_series()
            .to_numpy()
            .astype(np.int64)
        )
        heads = np.flatnonzero(first == np.arange(rows.n))  # the representatives, in row order
        group_of = np.searchsorted(heads, first)
        values: dict[str, list[Any]] = {key: [] for key in [*keys, *(r.key for r in watched)]}
        representatives = rows.frame[heads.tolist()].to_dicts()
        for row in representatives:
            event = event_of_row(row)
            features = counter_context(event)
            for key in keys:
                value = features[key]
                values[key].append(value.value if isinstance(value, Enum) else value)
            for ref in watched:
                found = many_values(event, ref.field) or ()
                listed = self._watchlists[ref.name]
                member = any(listed.contains(value) for value in found) if found else None
                values[ref.key].append(member)
        index = pl.Series(group_of)
        return {key: pl.Series(key, found).gather(index) for key, found in values.items()}

    def _lexicon(self, rows: Rows, ref: FieldRef) -> pl.Series:
        """Whether the field's text has a term of the lexicon: the live matcher runs once per
        distinct text; rows are matched back by text."""
        found = self._lexicon_hits.get(ref.field)
        if found is None:
            texts = rows.text(ref.field)
            by_lexicon: dict[str, list[str]] = {}
            for text in texts.unique().to_list():
                for name in {hit.lexicon for hit in self._matcher.find(text, ref.field)}:
                    by_lexicon.setdefault(name, []).append(text)
            hitting = sorted({text for listed in by_lexicon.values() for text in listed})
            where = np.flatnonzero(texts.is_in(_strings(hitting)).to_numpy())
            found = self._lexicon_hits[ref.field] = (where, texts.gather(where), by_lexicon)
        where, candidates, by_lexicon = found
        flags = np.zeros(rows.n, dtype=bool)
        flags[where] = candidates.is_in(_strings(by_lexicon.get(ref.name, []))).to_numpy()
        return pl.Series(ref.key, flags)

    def _watchlist(self, rows: Rows, ref: FieldRef) -> pl.Series:
        """Whether the field's value is on the list after the live normalisation, which runs
        once per distinct value; rows are matched back by value."""
        column = column_of(ref.field)
        values = rows.frame.get_column(column)
        normal = self._normal_values.get(column)
        if normal is None:
            unique = values.drop_nulls().unique()
            # Printable ASCII normalises by dropping the spaces and dashes and lower-casing
            # (NFKC leaves it as it is, case-folding lowers its letters); anything else goes
            # through the live normaliser itself.
            plain = unique.str.contains(r"^[ -~]*$")
            simple = unique.str.replace_all(r"[ \-]", "").str.to_lowercase()
            normal = self._normal_values[column] = (
                unique.filter(plain),
                simple.filter(plain),
                unique.filter(~plain).to_list(),
            )
        plain_values, plain_normal, others = normal
        listed = self._watchlists[ref.name]
        on_list = plain_values.filter(plain_normal.is_in(_strings(sorted(listed.entries))))
        hits = [*on_list.to_list(), *(value for value in others if listed.contains(value))]
        member = values.is_in(_strings(hits)).fill_null(False).to_numpy()
        return _nullable(member, values.is_not_null().to_numpy()).alias(ref.key)

    # -- features over executed history ----------------------------------------------------------

    def _history_features(
        self,
        rows: Rows,
        executed: Mask,
        pool: Executor | None = None,
        before: dict[str, pl.Series] | None = None,
        changed: Mask | None = None,
    ) -> dict[str, pl.Series]:
        """Every feature over executed history, each computed on its own (on ``pool``'s
        threads when given); the shared index structures are built once (``Memo``). Given the
        features ``before`` a change of ``executed`` at the rows ``changed``, a feature none of
        whose records is among those rows keeps its value."""
        keys = self.plan.history_keys
        everything = np.ones(rows.n, dtype=bool)
        # (features it gives, their computation, the rows whose execution it counts)
        tasks: list[tuple[tuple[str, ...], Callable[[], dict[str, Any]], Callable[[], Mask]]] = []
        if "counterparty.first_seen" in keys:
            tasks.append(
                (
                    ("counterparty.first_seen",),
                    lambda: _first_seen(rows, executed),
                    lambda: everything,
                )
            )
        if keys & {"history.inbound_24h", "history.inbound_24h_pct"}:
            tasks.append(
                (
                    ("history.inbound_24h", "history.inbound_24h_pct"),
                    lambda: _inbound_24h(rows, executed),
                    partial(rows.is_in, "kind", _KINDS_OF[Direction.IN]),
                )
            )
        if "history.outbound_count_24h" in keys:
            tasks.append(
                (
                    ("history.outbound_count_24h",),
                    lambda: _outbound_count_24h(rows, executed),
                    partial(rows.is_in, "kind", _KINDS_OF[Direction.OUT]),
                )
            )
        if "history.same_payee_count_today" in keys:
            tasks.append(
                (
                    ("history.same_payee_count_today",),
                    lambda: _same_payee_count_today(rows, executed),
                    lambda: everything,
                )
            )
        # the costliest first (distinct counts, then fixed spans), so the threads finish together
        windows = sorted(
            self.plan.windows.items(),
            key=lambda item: (
                item[1].aggregate is not Aggregate.COUNT_DISTINCT,
                item[1].fixed_length_us is None,
            ),
        )
        for key, spec in windows:
            tasks.append(
                (
                    (key,),
                    partial(_window_feature, key, spec, rows, executed),
                    partial(window_records, spec, rows),
                )
            )
        out: dict[str, Any] = {}
        if before is not None and changed is not None:
            remaining = []
            for task in tasks:
                names, _, counted = task
                if counted()[changed].any() or not all(k in before for k in names if k in keys):
                    remaining.append(task)
                else:  # the same records as before: the same values
                    out.update((k, before[k]) for k in names if k in keys)
            tasks = remaining
        if pool is None:
            parts = [compute() for _, compute, _ in tasks]
        else:
            parts = [f.result() for f in [pool.submit(compute) for _, compute, _ in tasks]]
        for part in parts:
            out.update(part)
        return {k: _named(k, v) for k, v in out.items() if k in keys}


def _named(name: str, values: pl.Series | I64) -> pl.Series:
    if isinstance(values, pl.Series):
        return values if values.name == name else values.alias(name)
    return pl.Series(name, values)


def _window_feature(key: str, spec: WindowSpec, rows: Rows, executed: Mask) -> dict[str, Any]:
    return {key: window(spec, rows, executed)}


def _first_seen(rows: Rows, executed: Mask) -> dict[str, Any]:
    series = rows.series("customer.id", "counterparty.account")
    start = rows.start_rank("all", lambda: rows.ts[:1].repeat(rows.n))
    seen = series.window_sum(executed.astype(np.int64), start, "all")
    return {"counterparty.first_seen": _nullable(seen == 0, rows.has_payee)}


def _inbound_24h(rows: Rows, executed: Mask) -> dict[str, Any]:
    inbound_in = executed & rows.is_in("kind", _KINDS_OF[Direction.IN])
    by_account = rows.series("account.id", "amount.currency")
    by_customer = rows.series("customer.id", "amount.currency")
    start = rows.start_rank("24h", lambda: rows.ts - DAY_US)
    amounts = np.where(inbound_in, rows.amount, 0)
    inbound = np.where(
        rows.has_account,
        by_account.window_sum(amounts, start, "24h"),
        by_customer.window_sum(amounts, start, "24h"),
    )
    zero = rows.amount == 0
    pct = inbound * 100 // np.where(zero, 1, rows.amount)
    return {"history.inbound_24h": inbound, "history.inbound_24h_pct": _nullable(pct, ~zero)}


def _outbound_count_24h(rows: Rows, executed: Mask) -> dict[str, Any]:
    series = rows.series("customer.id")
    out_rows = (executed & rows.is_in("kind", _KINDS_OF[Direction.OUT])).astype(np.int64)
    count = series.window_sum(out_rows, rows.start_rank("24h", lambda: rows.ts - DAY_US), "24h")
    return {"history.outbound_count_24h": count}


def _same_payee_count_today(rows: Rows, executed: Mask) -> dict[str, Any]:
    series = rows.series("customer.id", "counterparty.account")
    count = series.window_sum(
        executed.astype(np.int64),
        rows.start_rank("midnight", lambda: rows.midnight),
        "midnight",
    )
    return {"history.same_payee_count_today": np.where(rows.has_payee, count, 0)}


def _strings(values: list[str]) -> pl.Series:
    """A list of strings as an ``is_in`` operand."""
    return pl.Series(values, dtype=pl.String).implode()


def _nullable(values: Any, present: Mask) -> pl.Series:
    return pl.Series(values).set(pl.Series(~present), None)


def _equality_only(rules: tuple[CompiledRule, ...]) -> frozenset[str]:
    """Feature keys every comparison of which is ``==`` or ``!=`` with a constant."""
    equality: set[str] = set()
    other: set[str] = set()

    def visit(condition: Condition) -> None:
        if isinstance(condition, Compare):
            simple = condition.op in (Op.EQ, Op.NE) and isinstance(condition.right, Const)
            for operand in (condition.left, condition.right):
                if isinstance(operand, FieldRef):
                    (equality if simple else other).add(operand.key)
            return
        for item in condition.items:
            visit(item)

    for rule in rules:
        visit(rule.guarded)
    return frozenset(equality - other)


def _packed_hits(rules: list[pl.Expr]) -> list[pl.Expr]:
    """The rules' hits packed eight to a byte, as ``np.packbits`` packs a row of booleans (the
    first rule in the high bit): one UInt8 column per eight rules."""
    columns = []
    for start in range(0, len(rules), 8):
        bits = [
            rule.cast(pl.UInt8) * (1 << (7 - offset))
            for offset, rule in enumerate(rules[start : start + 8])
        ]
        columns.append(reduce(operator.add, bits).cast(pl.UInt8).alias(f"hits{start // 8}"))
    return columns


def _evaluate(features: pl.DataFrame, packed: list[pl.Expr]) -> npt.NDArray[np.uint8]:
    """rows × bytes: the packed hits of every rule on every row."""
    if not packed:
        return np.zeros((features.height, 0), dtype=np.uint8)
    return np.ascontiguousarray(features.select(packed).to_numpy(), dtype=np.uint8)


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
        ids = frame.get_column("event_id")
        if ids.n_unique() != self.n:
            duplicated = ids.is_duplicated()
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
        self.has_account = frame.get_column("account").to_numpy()
        self.has_payee = frame.get_column("counterparty.account").is_not_null().to_numpy()
        new_instant = np.ones(self.n, dtype=bool)  # the stream is in timestamp order
        new_instant[1:] = self.ts[1:] != self.ts[:-1]
        self._unique_ts = self.ts[new_instant]
        self._series: Memo[tuple[str, ...], Series] = Memo()
        self.ts_rank: I64 = np.cumsum(new_instant, dtype=np.int64) - 1  # == rank(ts)
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
        self._ranks: Memo[str, I64] = Memo()
        self.window_parts: Memo[str, tuple[I64, Mask]] = Memo()  # per window: start, filter
        self._starts: Memo[str, I64] = Memo()

    def start_rank(self, name: str, instants: Callable[[], I64]) -> I64:
        """``rank`` of the instants ``instants()`` computes, kept under ``name``."""
        return self._starts.get(name, lambda: self.rank(instants()))

    def rank(self, instants: I64) -> I64:
        """How many distinct row timestamps lie before each instant."""
        return np.searchsorted(self._unique_ts, instants, side="left").astype(np.int64)

    def series(self, *columns: str) -> Series:
        def build() -> Series:
            key = codes(*(self.ranks(c) for c in columns))
            return Series(key, self.ts_rank, len(self._unique_ts))

        return self._series.get(columns, build)

    def ranks(self, column: str) -> I64:
        return self._ranks.get(column, lambda: dense_rank(self.frame.get_column(column)))

    @cached_property
    def direction(self) -> npt.NDArray[np.str_]:
        mapping = {kind.value: d.value for kind, d in DIRECTION_OF_KIND.items()}
        found: npt.NDArray[np.str_] = (
            self.frame.get_column("kind").replace_strict(mapping).to_numpy().astype(str)
        )
        return found

    @cached_property
    def kind(self) -> npt.NDArray[np.str_]:
        return self.frame.get_column("kind").to_numpy().astype(str)

    @cached_property
    def channel(self) -> npt.NDArray[np.str_]:
        return self.frame.get_column("channel").to_numpy().astype(str)

    @cached_property
    def currency(self) -> npt.NDArray[np.str_]:
        return self.frame.get_column("amount.currency").to_numpy().astype(str)

    def is_in(self, column: str, values: list[str]) -> Mask:
        """Rows whose ``column`` holds one of ``values`` (never a missing value)."""
        found: Mask = (
            self.frame.get_column(column).is_in(_strings(values)).fill_null(False).to_numpy()
        )
        return found

    @cached_property
    def payee_code(self) -> I64:
        return codes(self.ranks("counterparty.account"))

    @cached_property
    def customer_code(self) -> I64:
        return codes(self.ranks("customer.id"))

    @cached_property
    def has_purpose(self) -> Mask:
        return self.frame.get_column("purpose.code").is_not_null().to_numpy()

    @cached_property
    def local_civil(self) -> tuple[I64, I64, I64]:
        """(year, month, day) of each row's branch-local date."""
        return civil(self.local_day)

    @cached_property
    def local_date_number(self) -> I64:
        """The branch-local date as the number YYYYMMDD."""
        year, month, day = self.local_civil
        number: I64 = year * 10000 + month * 100 + day
        return number

    @cached_property
    def age(self) -> tuple[I64, Mask]:
        """The customer's whole years on the branch-local date, and whether it is known."""
        birth, present = self.days("customer.birth_date")
        by, bm, bd = civil(birth)
        # YYYYMMDD numbers: the difference's ten-thousands are the years, less one when the
        # birthday (MMDD, < 10000) is still to come that year
        age: I64 = (self.local_date_number - (by * 10000 + bm * 100 + bd)) // 10000
        return age, present

    @cached_property
    def record_age(self) -> I64:
        """The customer's whole years on the branch-local date, as the history record holds
        them for age-filtered windows; -1 when the birth date is unknown."""
        age, present = self.age
        result: I64 = np.where(present, age, -1)
        return result

    def days(self, column: str) -> tuple[I64, Mask]:
        values = self.frame.get_column(column)
        present = values.is_not_null().to_numpy()
        days = values.cast(pl.Int32).fill_null(0).to_numpy().astype(np.int64)
        return days, present

    def text(self, field: str) -> pl.Series:
        """The field's text per row, "" when absent; ``any_text`` joins the non-empty texts
        with newlines, in live's order."""
        if field == ANY_TEXT:
            parts = [pl.when(pl.col(c) != "").then(pl.col(c)) for c in TEXT_COLUMNS.values()]
            joined = pl.concat_str(parts, separator="\n", ignore_nulls=True).fill_null("")
            return self.frame.select(joined.alias(field)).get_column(field)
        return self.frame.get_column(TEXT_COLUMNS[field]).fill_null("")


# -- derived features of the event alone, on the branch's calendar ------------------------------


def _local_date(rows: Rows) -> pl.Series:
    return pl.Series(rows.local_date_number)


def _age(rows: Rows) -> pl.Series:
    return _nullable(*rows.age)


def _is_elderly(rows: Rows) -> pl.Series:
    return _age(rows) >= ELDERLY_AGE


def _days_since(column: str) -> Callable[[Rows], pl.Series]:
    def compute(rows: Rows) -> pl.Series:
        days, present = rows.days(column)
        return _nullable(rows.local_day - days, present)

    return compute


def _region_prefix(regions: pl.Series, depth: int) -> pl.Series:
    """The region codes cut to their first ``depth`` parts, cut once per distinct code."""
    distinct = regions.drop_nulls().unique()
    cut = distinct.str.split("-").list.head(depth).list.join("-")
    return regions.replace_strict(distinct, cut, default=None, return_dtype=pl.String)


def _other_region(rows: Rows) -> pl.Series:
    payee = _region_prefix(rows.frame.get_column("counterparty.region"), 2)
    return payee != _region_prefix(rows.frame.get_column("branch.region"), 2)


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
        return rows.start_rank("midnight", lambda: rows.midnight)
    length = spec.fixed_length_us
    if length is not None:
        return rows.start_rank(f"{length}us", lambda: rows.ts - length)
    return rows.start_rank("opened", lambda: _opening_instants(rows))


def _opening_instants(rows: Rows) -> I64:
    """Since the branch-local midnight of the opening day; without an account, everything."""
    opened, present = rows.days("account.opened_on")
    start = midnights(rows.zone_code, rows.zone_list, opened)
    result: I64 = np.where(present, start, np.iinfo(np.int64).min)
    return result


def _passes(spec: WindowSpec, rows: Rows) -> Mask:
    """Rows whose record passes the window's kind, direction, channel and currency filters."""
    keep = np.ones(rows.n, dtype=bool)
    if spec.kinds:
        keep &= rows.is_in("kind", [kind.value for kind in spec.kinds])
    if spec.direction is not None:
        kinds = [k.value for k, d in DIRECTION_OF_KIND.items() if d is spec.direction]
        keep &= rows.is_in("kind", kinds)
    if spec.channels:
        keep &= rows.is_in("channel", [channel.value for channel in spec.channels])
    currency = spec.effective_currency
    if currency is not None:
        keep &= rows.is_in("amount.currency", [currency.value])
    if spec.min_customer_age is not None:
        keep &= rows.record_age >= spec.min_customer_age  # unknown age: -1, never passes
    return keep


def window_records(spec: WindowSpec, rows: Rows) -> Mask:
    """The rows whose execution ``spec`` can count: its records are these rows, if executed."""
    return rows.window_parts.get(spec.name, lambda: (_start_rank(spec, rows), _passes(spec, rows)))[
        1
    ]


def window(spec: WindowSpec, rows: Rows, executed: Mask) -> I64:
    """The value of ``spec`` for every row, as live screening computes it for that row."""
    start, passes = rows.window_parts.get(
        spec.name, lambda: (_start_rank(spec, rows), _passes(spec, rows))
    )
    purpose = ("purpose.code",) if spec.same_purpose else ()

    def over(*columns: str) -> I64:
        return _over(spec, rows, rows.series(*columns, *purpose), start, passes, executed)

    if spec.key is WindowKey.COUNTERPARTY:
        value = np.where(rows.has_payee, over("customer.id", "counterparty.account"), 0)
    elif spec.key is WindowKey.PAYEE:
        value = np.where(rows.has_payee, over("counterparty.account"), 0)
    elif spec.key is WindowKey.BRANCH:
        value = over("branch.id")
    elif spec.key is WindowKey.ACCOUNT:
        value = np.where(rows.has_account, over("account.id"), over("customer.id"))
    else:
        value = over("customer.id")
    if spec.same_purpose:  # an event without a purpose has no same-purpose records: 0
        value = np.where(rows.has_purpose, value, 0)
    result: I64 = value
    return result


def _over(
    spec: WindowSpec, rows: Rows, series: Series, start: I64, passes: Mask, executed: Mask
) -> I64:
    start_name = f"{spec.span.value}:{spec.length}"
    records = passes & executed
    current = passes if spec.include_current else np.zeros(rows.n, dtype=bool)
    aggregate = spec.aggregate
    if aggregate is Aggregate.SUM:
        return series.window_sum(np.where(records, rows.amount, 0), start, start_name) + np.where(
            current, rows.amount, 0
        )
    if aggregate is Aggregate.COUNT:
        counted = records & rows.has_payee if spec.measure is Measure.COUNTERPARTY else records
        mine = current & rows.has_payee if spec.measure is Measure.COUNTERPARTY else current
        return series.window_sum(counted.astype(np.int64), start, start_name) + mine.astype(
            np.int64
        )
    lo = series.lower(start, start_name)
    if aggregate is Aggregate.MAX:
        values = np.where(records, rows.amount, 0)[series.order]
        best = range_max(series, values, lo)
        return np.maximum(best, np.where(current, rows.amount, 0))
    # count_distinct payee accounts or customers: a history record counts when no earlier
    # record of the same value lies inside the row's window; the row itself when none does.
    if spec.measure is Measure.CUSTOMER:
        members, value_code = records, rows.customer_code
        own = current
    else:
        members, value_code = records & rows.has_payee, rows.payee_code
        own = current & rows.has_payee
    previous = series.previous(members, value_code, passes, spec.name)
    distinct = first_occurrences(series, members, previous, lo)
    total: I64 = distinct + (own & (previous < lo)).astype(np.int64)
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
    sorted_lo = np.empty_like(lo)
    sorted_lo[hi] = lo
    if len(lo) < 2 or bool(np.all(sorted_lo[1:] >= sorted_lo[:-1])):
        counted: I64 = sliding_distinct(sorted_members, sorted_previous, sorted_lo)[hi]
        return counted
    # members before hi whose previous is before lo, minus members before lo (all of which
    # have their previous before lo): a dominance count over a merge-sort tree.
    n = len(lo)
    y = np.where(sorted_members, sorted_previous + 1, n + 2)
    below_hi = prefix_count_at_most(y, hi, lo)
    member_prefix = np.concatenate([[0], np.cumsum(sorted_members.astype(np.int64))])
    distinct: I64 = below_hi - member_prefix[lo]
    return distinct


def sliding_distinct(members: Mask, previous: I64, lo: I64) -> I64:
    """``first_occurrences`` in series order when window starts never move back (``lo`` is
    non-decreasing, as for every span over one time zone): a member at p whose previous member
    is r counts for exactly the rows q > p with r < lo[q] <= p, a contiguous run of rows, added
    with a difference array."""
    n = len(lo)
    p = np.flatnonzero(members)
    first = np.maximum(p + 1, np.searchsorted(lo, previous[p], side="right"))
    last = np.searchsorted(lo, p, side="right")  # one past the last row with lo <= p
    keep = first < last
    diff = np.bincount(first[keep], minlength=n + 1) - np.bincount(last[keep], minlength=n + 1)
    result: I64 = np.cumsum(diff[:n]).astype(np.int64)
    return result


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
