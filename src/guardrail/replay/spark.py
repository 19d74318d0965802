"""The Spark replay engine: the pack's IR compiled to PySpark Column expressions, windows and
history features compiled to window specs over event time, partitioned by customer, account and
payee so the work spreads over a cluster's executors.

Semantics are the columnar engine's (``replay.columnar``), which are the reference replay's:
a row's history is the executed rows before it in the stream; a fixed point over "which rows
executed" settles the decisions. Features of the event alone (its fields, branch-local dates,
lexicon and watchlist tests) are computed by the columnar engine's code on the driver and
shipped as columns; everything over history, and every rule, runs in Spark.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from guardrail.context.watchlist import Watchlist
from guardrail.lang.declarations import Aggregate, Measure, Span, WindowKey, WindowSpec
from guardrail.lang.ir import All, AnyOf, Compare, Condition, FieldRef, Op
from guardrail.lang.pack import Pack
from guardrail.model.event import Direction
from guardrail.replay.columnar import ColumnarEngine, Rows
from guardrail.replay.localtime import DAY_US, HOUR_US
from guardrail.replay.plan import ReplayPlan, compile_plan
from guardrail.replay.result import INTERCEPT_RANK, Decisions, decide_rows

Mask = npt.NDArray[np.bool_]
Progress = Callable[[str], None]
BITS_PER_WORD = 62
_SAME_DAY_REACH = 27 * HOUR_US  # a local day is at most 26 hours (Antarctica/Troll)
_UNBOUNDED = None


def spark_session(master: str, options: Mapping[str, Any] | None = None) -> Any:
    """A Spark session for replays: no web UI, driver bound to 127.0.0.1 on free ports, UTC,
    Arrow transfers, few shuffle partitions for local masters (``options`` override)."""
    from pyspark.sql import SparkSession

    cores = 2
    if master.startswith("local[") and master[6:-1].isdigit():
        cores = int(master[6:-1])
    settings: dict[str, Any] = {
        "spark.ui.enabled": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(max(2, 4 * cores)),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.driver.memory": "2g",
    }
    settings.update(options or {})
    builder = SparkSession.builder.master(master).appName("guardrail-replay")
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


_SPARK_OPS: dict[Op, Callable[[Any, Any], Any]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


def compile_column(condition: Condition, names: Mapping[str, str]) -> Any:
    """IR to a Spark boolean Column over feature columns ``names[key]``; a comparison with a
    missing value is false (no negation in the IR, so this is three-valued logic)."""
    from pyspark.sql import functions as F

    if isinstance(condition, Compare):
        left = F.col(names[condition.left.key])
        right = (
            F.col(names[condition.right.key])
            if isinstance(condition.right, FieldRef)
            else F.lit(condition.right.value)
        )
        return F.coalesce(_SPARK_OPS[condition.op](left, right), F.lit(False))
    parts = [compile_column(item, names) for item in condition.items]
    if isinstance(condition, All):
        return reduce(operator.and_, parts)
    assert isinstance(condition, AnyOf)
    return reduce(operator.or_, parts)


@dataclass(frozen=True)
class _History:
    """One collected history array: a partition of rows and how far back it must reach."""

    name: str
    partition: tuple[str, ...]
    reach: int | None  # microseconds before the event; None: the whole history


class SparkEngine:
    """Replays a stream table on Spark. Use as a context manager; a session it created is
    stopped on exit, a session passed in is left running (tests share one)."""

    name = "spark"

    def __init__(
        self,
        pack: Pack,
        watchlists: Mapping[str, Watchlist],
        *,
        master: str = "local[2]",
        options: Mapping[str, Any] | None = None,
        session: Any = None,
    ) -> None:
        self.pack = pack
        self.plan: ReplayPlan = compile_plan(pack, self.name)
        self._events = ColumnarEngine(pack, watchlists)  # features of the event alone
        self._master = master
        self._options = dict(options or {})
        self._session = session
        self._owned = False
        keys = list(self.plan.refs)
        self._names = {key: f"f{index}" for index, key in enumerate(keys)}

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the Spark session if this engine started it."""
        if self._owned and self._session is not None:
            self._session.stop()
            self._session = None
            self._owned = False

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = spark_session(self._master, self._options)
            self._owned = True
        return self._session

    def run(self, frame: pl.DataFrame, progress: Progress | None = None) -> tuple[Decisions, Mask]:
        """Decisions of every row and which rows were executed (recorded as history)."""
        say = progress or (lambda _message: None)
        rows = Rows(frame)
        static = self._events.static_features(rows)
        base = self._base_table(rows, static)
        spark = self.session
        events = spark.createDataFrame(base).cache()
        screened = ~rows.background
        always = rows.background | rows.legitimate
        executed = np.ones(rows.n, dtype=bool)
        round_no = 0
        try:
            while True:
                round_no += 1
                matrix = self._hits(spark, events, executed, rows.n)
                matrix[~screened] = False
                decisions = decide_rows(self.pack, matrix, screened)
                settled = always | (decisions.action_rank < INTERCEPT_RANK)
                changed = int(np.count_nonzero(settled != executed))
                say(f"round {round_no}: {changed:,} rows changed executed status")
                if changed == 0:
                    return decisions, executed
                executed = settled
        finally:
            events.unpersist()

    # -- the table shipped to Spark ---------------------------------------------------------------

    def _base_table(self, rows: Rows, static: pl.DataFrame) -> pa.Table:
        n = rows.n
        row = np.arange(n, dtype=np.int64)

        def key(column: str) -> npt.NDArray[np.int64]:
            # a missing key becomes a key of its own, so the row never meets other rows
            ranks = rows.ranks(column)
            return np.where(ranks > 0, ranks, -(row + 1))

        opened, has_opened = rows.days("account.opened_on")
        from guardrail.replay.localtime import midnights

        opened_midnight = midnights(rows.zone_code, rows.zone_list, opened)
        columns: dict[str, Any] = {
            "row": row,
            "ts": rows.ts,
            "midnight": rows.midnight,
            "opened_midnight": np.where(has_opened, opened_midnight, np.iinfo(np.int64).min),
            "has_account": rows.has_account,
            "has_payee": rows.has_payee,
            "cust": key("customer.id"),
            "acct": key("account.id"),
            "payee": key("counterparty.account"),
            "payee_code": rows.ranks("counterparty.account"),
            "cur": rows.ranks("amount.currency"),
            "currency": rows.currency.astype(str),
            "amount": rows.amount,
            "kind": rows.kind.astype(str),
            "direction": rows.direction.astype(str),
            "channel": rows.channel.astype(str),
        }
        table = pa.table(columns)
        for key_name in static.columns:
            if key_name in self._names:
                table = table.append_column(
                    self._names[key_name], static.get_column(key_name).to_arrow()
                )
        return table

    # -- one round: history features, rules, hit bits ------------------------------------------

    def _hits(self, spark: Any, events: Any, executed: Mask, n: int) -> Mask:
        from pyspark.sql import functions as F

        flags = spark.createDataFrame(
            pa.table({"row": np.arange(n, dtype=np.int64), "executed": executed})
        )
        data = events.join(F.broadcast(flags) if n <= 200_000 else flags, "row")
        data = data.withColumns(_start_columns())
        data = _add_sums(data, self._sums())
        for history in self._histories():
            data = data.withColumn(history.name, _collect(history))
        inbound = "history.inbound_24h"
        if self.plan.history_keys & {inbound, "history.inbound_24h_pct"}:
            data = data.withColumn(
                "_inbound",
                F.when(F.col("has_account"), F.col("p_in_acct")).otherwise(F.col("p_in_cust")),
            )
        for key in self.plan.history_keys:
            data = data.withColumn(self._names[key], self._history_value(key))
        rules = [compile_column(rule.guarded, self._names) for rule in self.plan.rules]
        words: list[Any] = []
        for first in range(0, len(rules), BITS_PER_WORD):
            chunk = rules[first : first + BITS_PER_WORD]
            bits = [
                F.when(rule, F.lit(1 << offset)).otherwise(F.lit(0)).cast("long")
                for offset, rule in enumerate(chunk)
            ]
            words.append(reduce(operator.add, bits).alias(f"w{len(words)}"))  # disjoint bits
        result = data.select("row", *words).toArrow()
        order = np.asarray(result.column("row").to_numpy(), dtype=np.int64)
        matrix = np.zeros((n, len(rules)), dtype=bool)
        for index in range(len(words)):
            word = np.asarray(result.column(f"w{index}").to_numpy(), dtype=np.int64)
            width = min(BITS_PER_WORD, len(rules) - index * BITS_PER_WORD)
            bits_of = (word[:, None] >> np.arange(width, dtype=np.int64)) & 1
            matrix[order, index * BITS_PER_WORD : index * BITS_PER_WORD + width] = bits_of.astype(
                bool
            )
        return matrix

    def _sums(self) -> list[_Sum]:
        """Sums and counts over history, computed as (before this row) − (before the start)."""
        from pyspark.sql import functions as F

        executed = F.col("executed")
        amount = F.col("amount")
        keys = self.plan.history_keys
        sums: list[_Sum] = []
        if "counterparty.first_seen" in keys:
            sums.append(_Sum("p_seen", ("cust", "payee"), _NO_START, executed.cast("long")))
        if keys & {"history.inbound_24h", "history.inbound_24h_pct"}:
            inbound = F.when(executed & (F.col("direction") == Direction.IN.value), amount)
            value = inbound.otherwise(F.lit(0)).cast("long")
            sums.append(_Sum("p_in_acct", ("acct", "cur"), "s_day", value))
            sums.append(_Sum("p_in_cust", ("cust", "cur"), "s_day", value))
        if "history.outbound_count_24h" in keys:
            out = executed & (F.col("direction") == Direction.OUT.value)
            sums.append(_Sum("p_out", ("cust",), "s_day", out.cast("long")))
        if "history.same_payee_count_today" in keys:
            sums.append(
                _Sum("p_payee_today", ("cust", "payee"), "s_midnight", executed.cast("long"))
            )
        for spec in self.plan.windows.values():
            if spec.aggregate not in (Aggregate.SUM, Aggregate.COUNT):
                continue
            record = F.struct(*(F.col(c) for c in ("kind", "direction", "channel", "currency")))
            keep = executed & _passes(spec, record)
            if spec.aggregate is Aggregate.SUM:
                value = F.when(keep, amount).otherwise(F.lit(0)).cast("long")
            elif spec.measure is Measure.COUNTERPARTY:
                value = (keep & F.col("has_payee")).cast("long")
            else:
                value = keep.cast("long")
            start = _start_column(spec)
            for partition in _partitions(spec):
                sums.append(_Sum(_sum_name(spec, partition), partition, start, value))
        return sums

    def _histories(self) -> list[_History]:
        """History arrays for max and count_distinct windows: one per partition, reaching as
        far back as the longest window over it."""
        needs: dict[tuple[str, ...], int | None] = {}
        for spec in self.plan.windows.values():
            if spec.aggregate in (Aggregate.SUM, Aggregate.COUNT):
                continue
            reach = _reach(spec)
            for partition in _partitions(spec):
                if partition not in needs:
                    needs[partition] = reach
                    continue
                known = needs[partition]
                needs[partition] = None if known is None or reach is None else max(known, reach)
        return [
            _History("h_" + "_".join(partition), partition, reach)
            for partition, reach in needs.items()
        ]

    def _history_value(self, key: str) -> Any:
        from pyspark.sql import functions as F

        if key == "counterparty.first_seen":
            return F.when(F.col("has_payee"), F.col("p_seen") == 0)
        if key == "history.inbound_24h":
            return F.col("_inbound")
        if key == "history.inbound_24h_pct":
            # integer division of non-negative longs: the floor, exactly
            return F.expr("CASE WHEN amount != 0 THEN (_inbound * 100) div amount END")
        if key == "history.outbound_count_24h":
            return F.col("p_out")
        if key == "history.same_payee_count_today":
            return F.when(F.col("has_payee"), F.col("p_payee_today")).otherwise(F.lit(0))
        return self._window(self.plan.windows[key])

    def _window(self, spec: WindowSpec) -> Any:
        from pyspark.sql import functions as F

        def over(partition: tuple[str, ...]) -> Any:
            if spec.aggregate in (Aggregate.SUM, Aggregate.COUNT):
                return _with_current(spec, F.col(_sum_name(spec, partition)))
            return _aggregate(spec, "h_" + "_".join(partition), _start(spec))

        if spec.key is WindowKey.COUNTERPARTY:
            return F.when(F.col("has_payee"), over(("cust", "payee"))).otherwise(F.lit(0))
        if spec.key is WindowKey.ACCOUNT:
            return F.when(F.col("has_account"), over(("acct",))).otherwise(over(("cust",)))
        return over(("cust",))


_NO_START = "s_none"


@dataclass(frozen=True)
class _Sum:
    """A sum over a partition's executed history between a start instant and this row."""

    name: str
    partition: tuple[str, ...]
    start: str  # the column holding the start instant, or _NO_START for the whole history
    value: Any  # per-row contribution as a record (already filtered)


def _partitions(spec: WindowSpec) -> list[tuple[str, ...]]:
    if spec.key is WindowKey.COUNTERPARTY:
        return [("cust", "payee")]
    if spec.key is WindowKey.ACCOUNT:
        return [("acct",), ("cust",)]
    return [("cust",)]


def _sum_name(spec: WindowSpec, partition: tuple[str, ...]) -> str:
    return f"p_{spec.name}_{'_'.join(partition)}"


def _start_column(spec: WindowSpec) -> str:
    if spec.span is Span.SAME_DAY:
        return "s_midnight"
    if spec.span is Span.HOURS:
        return f"s_h{spec.length}"
    if spec.span is Span.DAYS:
        return f"s_d{spec.length}"
    return "opened_midnight"  # the smallest long when there is no account


def _start_columns() -> dict[str, Any]:
    from pyspark.sql import functions as F

    return {"s_midnight": F.col("midnight"), "s_day": F.col("ts") - F.lit(DAY_US)}


def _add_sums(data: Any, sums: list[_Sum]) -> Any:
    """Add each sum as a column: Σ value over the partition's rows before this one, minus Σ
    over its rows strictly before the start instant (found by merging the start instants into
    the partition's timeline: an as-of lookup as one sort), never below 0."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not sums:
        return data
    extra: dict[str, Any] = {}
    for item in sums:
        if item.start.startswith("s_h") and item.start not in extra:
            extra[item.start] = F.col("ts") - F.lit(int(item.start[3:]) * HOUR_US)
        elif item.start.startswith("s_d") and item.start not in extra and item.start != "s_day":
            extra[item.start] = F.col("ts") - F.lit(int(item.start[3:]) * DAY_US)
    data = data.withColumns(extra) if extra else data
    data = data.withColumns({f"v_{item.name}": item.value for item in sums})
    groups: dict[tuple[tuple[str, ...], str], list[_Sum]] = {}
    for item in sums:
        groups.setdefault((item.partition, item.start), []).append(item)
    # Every group reads the same base and yields a small (row, sums) table joined back: the
    # plan grows linearly with the groups, not by a self-join per group.
    base = data = data.localCheckpoint()  # computed once; every group reads it
    for (partition, start), group in groups.items():
        before = (
            Window.partitionBy(*partition).orderBy("row").rowsBetween(Window.unboundedPreceding, -1)
        )
        prior = base.select(
            "row",
            *(
                F.coalesce(F.sum(f"v_{item.name}").over(before), F.lit(0)).alias(item.name)
                for item in group
            ),
        )
        if start != _NO_START:
            records = base.select(
                *partition,
                F.col("ts").alias("_t"),
                F.lit(1).alias("_k"),
                F.lit(None).cast("long").alias("_q"),
                *(F.col(f"v_{item.name}").alias(f"q_{item.name}") for item in group),
            )
            queries = base.select(
                *partition,
                F.col(start).alias("_t"),
                F.lit(0).alias("_k"),
                F.col("row").alias("_q"),
                *(F.lit(0).cast("long").alias(f"q_{item.name}") for item in group),
            )
            timeline = (
                Window.partitionBy(*partition)
                .orderBy("_t", "_k")
                .rowsBetween(Window.unboundedPreceding, Window.currentRow)
            )
            earlier = (
                records.unionByName(queries)
                .select(
                    "_q", *(F.sum(f"q_{i.name}").over(timeline).alias(f"q_{i.name}") for i in group)
                )
                .where(F.col("_q").isNotNull())
                .withColumnRenamed("_q", "row")
            )
            prior = prior.join(earlier, "row").select(
                "row",
                *(
                    F.greatest(F.col(item.name) - F.col(f"q_{item.name}"), F.lit(0)).alias(
                        item.name
                    )
                    for item in group
                ),
            )
        data = data.join(prior, "row")
    return data


def _with_current(spec: WindowSpec, history: Any) -> Any:
    from pyspark.sql import functions as F

    if not spec.include_current:
        return history
    current = F.struct(*(F.col(c) for c in ("kind", "direction", "channel", "currency")))
    mine = _passes(spec, current)
    if spec.aggregate is Aggregate.SUM:
        return history + F.when(mine, F.col("amount")).otherwise(F.lit(0))
    if spec.measure is Measure.COUNTERPARTY:
        mine = mine & F.col("has_payee")
    return history + F.when(mine, F.lit(1)).otherwise(F.lit(0))


def _reach(spec: WindowSpec) -> int | None:
    if spec.span is Span.SAME_DAY:
        return _SAME_DAY_REACH
    if spec.span is Span.HOURS:
        return (spec.length or 0) * HOUR_US
    if spec.span is Span.DAYS:
        return (spec.length or 0) * DAY_US
    return _UNBOUNDED


def _start(spec: WindowSpec) -> Any:
    from pyspark.sql import functions as F

    if spec.span is Span.SAME_DAY:
        return F.col("midnight")
    if spec.span is Span.HOURS:
        return F.col("ts") - F.lit((spec.length or 0) * HOUR_US)
    if spec.span is Span.DAYS:
        return F.col("ts") - F.lit((spec.length or 0) * DAY_US)
    return F.col("opened_midnight")  # the smallest long when there is no account


def _collect(history: _History) -> Any:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy(*history.partition).orderBy("ts")
    window = window.rangeBetween(
        Window.unboundedPreceding if history.reach is None else -history.reach, 0
    )
    record = F.struct(
        "row", "ts", "amount", "kind", "direction", "channel", "currency", "payee_code", "executed"
    )
    return F.collect_list(record).over(window)


def _records(
    history: str,
    start: Any,
    *,
    direction: str | None = None,
    spec: WindowSpec | None = None,
) -> Any:
    """The executed records of ``history`` before this row, at or after ``start``, that pass
    the filters."""
    from pyspark.sql import functions as F

    row = F.col("row")

    def keep(x: Any) -> Any:
        test = (x["row"] < row) & (x["ts"] >= start) & x["executed"]
        if direction is not None:
            test = test & (x["direction"] == direction)
        if spec is not None:
            test = test & _passes(spec, x)
        return test

    return F.filter(F.col(history), keep)


def _passes(spec: WindowSpec, x: Any) -> Any:
    from pyspark.sql import functions as F

    test = F.lit(True)
    if spec.kinds:
        test = test & x["kind"].isin([kind.value for kind in spec.kinds])
    if spec.direction is not None:
        test = test & (x["direction"] == spec.direction.value)
    if spec.channels:
        test = test & x["channel"].isin([channel.value for channel in spec.channels])
    currency = spec.effective_currency
    if currency is not None:
        test = test & (x["currency"] == currency.value)
    return test


def _sum(records: Any) -> Any:
    from pyspark.sql import functions as F

    return F.aggregate(records, F.lit(0).cast("long"), lambda total, x: total + x["amount"])


def _aggregate(spec: WindowSpec, history: str, start: Any) -> Any:
    from pyspark.sql import functions as F

    records = _records(history, start, spec=spec)
    current = F.struct(*(F.col(c) for c in ("kind", "direction", "channel", "currency")))
    mine = _passes(spec, current) if spec.include_current else F.lit(False)
    amount = F.col("amount")
    if spec.aggregate is Aggregate.SUM:
        return _sum(records) + F.when(mine, amount).otherwise(F.lit(0))
    if spec.aggregate is Aggregate.MAX:
        largest = F.coalesce(F.array_max(F.transform(records, lambda x: x["amount"])), F.lit(0))
        return F.greatest(largest, F.when(mine, amount).otherwise(F.lit(0)))
    if spec.aggregate is Aggregate.COUNT:
        if spec.measure is Measure.COUNTERPARTY:
            with_payee = F.filter(records, lambda x: x["payee_code"] > 0)
            return F.size(with_payee) + F.when(mine & F.col("has_payee"), 1).otherwise(0)
        return F.size(records) + F.when(mine, 1).otherwise(0)
    payees = F.transform(
        F.filter(records, lambda x: x["payee_code"] > 0), lambda x: x["payee_code"]
    )
    own = F.when(mine & F.col("has_payee"), F.array(F.col("payee_code"))).otherwise(
        F.array().cast("array<long>")
    )
    return F.size(F.array_distinct(F.concat(payees, own)))
