"""The Spark replay engine: the pack's IR compiled to PySpark Column expressions, windows and
history features compiled to window specs over event time, partitioned by customer, account and
payee so the work spreads over a cluster's executors.

Semantics are the columnar engine's (``replay.columnar``), which are the reference replay's:
a row's history is the executed rows before it in the stream; a fixed point over "which rows
executed" settles the decisions. Features of the event alone (its fields, branch-local dates,
lexicon and watchlist tests) are computed by the columnar engine's code on the driver and
shipped as columns; everything over history, and every rule, runs in Spark.

Each round is one Spark query over two tables cached once. Window columns are added per key
family after one shuffle each; sums are running sums minus a range frame over event time; max
and distinct counts are native range-frame aggregates, with a second frame for the rows at the
same timestamp earlier in the stream (a range frame would count later peers too).
"""

from __future__ import annotations

import operator
import os
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
from guardrail.replay.localtime import DAY_US, HOUR_US, midnights
from guardrail.replay.plan import ReplayPlan, compile_plan
from guardrail.replay.result import INTERCEPT_RANK, Decisions, decide_rows

Mask = npt.NDArray[np.bool_]
Progress = Callable[[str], None]
BITS_PER_WORD = 62
_SAME_DAY_REACH = 27 * HOUR_US  # a local day is at most 26 hours (Antarctica/Troll)
_UNBOUNDED = None


# Java options of a local master's one JVM (driver and executor at once), whose own threads
# compete with the task slots for the same cores: parallel GC with one thread per task slot and
# a heap fixed at its size (-Xms = -Xmx: no resizing) instead of G1's concurrent refinement and
# marking threads. The JIT keeps C2: compiling each round's large generated code costs more CPU
# than the tasks on 200,000 events, but every round runs the same plan and reuses it, and on
# 1,000,000 events C1 alone used more CPU than C2 (slower task code in every round).
# ``options`` override any of it (``spark.driver.defaultJavaOptions``), and
# ``spark.driver.extraJavaOptions`` comes after it on the command line (the later flag wins).
# On a cluster the executors keep Spark's defaults.
LOCAL_JAVA_OPTIONS = (
    "-XX:+UseParallelGC",
    "-XX:ParallelGCThreads={cores}",
    "-Xms{memory}",
)
# A local master's window partitions: the rows of one branch (a branch-wide window) are held in
# memory instead of an external array past 4,096 rows; on a cluster Spark's default stays.
LOCAL_WINDOW_BUFFER_ROWS = 1 << 20


def local_cores(master: str) -> int | None:
    """The task slots of a ``local`` / ``local[N]`` / ``local[*]`` master; None for a cluster."""
    if master == "local":
        return 1
    if master.startswith("local[") and master.endswith("]"):
        inside = master[6:-1].split(",")[0]  # local[N, maxFailures]
        if inside == "*":
            return os.cpu_count() or 1
        if inside.isdigit():
            return int(inside)
    return None


def session_settings(master: str, options: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The Spark settings of a replay session (see ``spark_session``); ``options`` win."""
    cores = local_cores(master)
    settings: dict[str, str] = {
        "spark.ui.enabled": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.driver.memory": "2g",
        "spark.ui.showConsoleProgress": "false",
    }
    given = {key: str(value) for key, value in (options or {}).items()}
    if cores is not None:  # a cluster keeps Spark's 200, coalesced by adaptive execution
        settings["spark.sql.shuffle.partitions"] = str(2 * cores)
        memory = given.get("spark.driver.memory", settings["spark.driver.memory"])
        memory += "m" if memory.isdigit() else ""  # Spark reads a bare number as MiB, Java not
        settings["spark.driver.defaultJavaOptions"] = " ".join(
            option.format(cores=cores, memory=memory) for option in LOCAL_JAVA_OPTIONS
        )
        settings["spark.sql.windowExec.buffer.in.memory.threshold"] = str(LOCAL_WINDOW_BUFFER_ROWS)
    settings.update(given)
    return settings


def spark_session(master: str, options: Mapping[str, Any] | None = None) -> Any:
    """A Spark session for replays: no web UI, driver bound to 127.0.0.1 on free ports, UTC,
    Arrow transfers, two shuffle partitions per local task slot (balance across slots
    without many small tasks), and for a local master the JVM
    options above (``options`` override any setting). The JVM options apply when this call
    starts the JVM, not to a session already running in the process."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("guardrail-replay")
    for key, value in session_settings(master, options).items():
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
        # Whether every row's branch keeps the same clock; then a row's same-day history is the
        # rows before it sharing its local midnight, a partition of its own (see ``_day``).
        self._one_zone = False
        self._parts = 2  # partitions of every shuffle (the session's shuffle partitions)

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
        self._one_zone = len(rows.zone_list) <= 1
        spark = self.session
        parts = self._parts = max(2, int(spark.conf.get("spark.sql.shuffle.partitions")))
        # Two cached tables, each shipped once: the narrow columns every history feature reads,
        # spread by customer (most windows are per customer), and the event-alone features the
        # rules read, spread and sorted by row (each round joins its history features to them
        # by row, and a cached sort is not sorted again).
        narrow = spark.createDataFrame(self._history_table(rows))
        narrow = narrow.repartition(parts, "cust").cache()
        wide = spark.createDataFrame(self._static_table(rows, static))
        wide = wide.repartition(parts, "row").sortWithinPartitions("row").cache()
        screened = ~rows.background
        always = rows.background | rows.legitimate
        executed = np.ones(rows.n, dtype=bool)
        round_no = 0
        try:
            while True:
                round_no += 1
                matrix = self._hits(spark, narrow, wide, executed, rows.n)
                matrix[~screened] = False
                decisions = decide_rows(self.pack, matrix, screened)
                settled = always | (decisions.action_rank < INTERCEPT_RANK)
                changed = int(np.count_nonzero(settled != executed))
                say(f"round {round_no}: {changed:,} rows changed executed status")
                if changed == 0:
                    return decisions, executed
                executed = settled
        finally:
            narrow.unpersist()
            wide.unpersist()

    # -- the tables shipped to Spark --------------------------------------------------------------

    def _history_table(self, rows: Rows) -> pa.Table:
        """What history features read: keys, time, amount and what window filters test."""
        n = rows.n
        row = np.arange(n, dtype=np.int64)

        def key(column: str) -> npt.NDArray[np.int64]:
            # a missing key becomes a key of its own, so the row never meets other rows
            ranks = rows.ranks(column)
            return np.where(ranks > 0, ranks, -(row + 1))

        opened, has_opened = rows.days("account.opened_on")
        opened_midnight = midnights(rows.zone_code, rows.zone_list, opened)
        return pa.table(
            {
                "row": row,
                "ts": rows.ts,
                "midnight": rows.midnight,
                "opened_midnight": np.where(has_opened, opened_midnight, np.iinfo(np.int64).min),
                "has_account": rows.has_account,
                "has_payee": rows.has_payee,
                "has_purpose": rows.has_purpose,
                "cust": key("customer.id"),
                "acct": key("account.id"),
                "payee": key("counterparty.account"),
                "branch": key("branch.id"),
                "purpose": key("purpose.code"),
                "cur": rows.ranks("amount.currency"),
                "payee_code": rows.ranks("counterparty.account"),
                "cust_code": rows.ranks("customer.id"),
                "age": rows.record_age,
                "currency": rows.currency.astype(str),
                "amount": rows.amount,
                "kind": rows.kind.astype(str),
                "direction": rows.direction.astype(str),
                "channel": rows.channel.astype(str),
            }
        )

    def _static_table(self, rows: Rows, static: pl.DataFrame) -> pa.Table:
        table = pa.table({"row": np.arange(rows.n, dtype=np.int64)})
        for key_name in static.columns:
            if key_name in self._names:
                table = table.append_column(
                    self._names[key_name], static.get_column(key_name).to_arrow()
                )
        return table

    # -- one round: history features, rules, hit bits ------------------------------------------

    def _hits(self, spark: Any, narrow: Any, wide: Any, executed: Mask, n: int) -> Mask:
        """One Spark job: every history feature over ``executed`` history, every rule, the hits
        packed into 62-bit words per row."""
        from pyspark.sql import functions as F

        data = wide
        if self.plan.history_keys:
            # only the rows that did not execute travel, broadcast to every task; in the first
            # round too, so every round runs the same plan and reuses the code Spark generated
            # and the JVM compiled for the first. Row -1 (no such row) keeps the table from
            # being empty, which the optimizer would fold into another plan.
            blocked = np.concatenate(([-1], np.flatnonzero(~executed))).astype(np.int64)
            flags = spark.createDataFrame(
                pa.table({"row": blocked, "_blocked": np.ones(len(blocked), dtype=bool)})
            )
            history = narrow.join(F.broadcast(flags), "row", "left")
            history = history.withColumn("executed", F.col("_blocked").isNull()).drop("_blocked")
            data = data.join(self._history_features(history, self._parts), "row")
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

    def _history_features(self, history: Any, parts: int) -> Any:
        """(row, one column per history feature) over the executed rows of ``history``.

        Window columns are added family by family (customer, account, payee, branch: the first
        key of their partition), each family after one shuffle by that key, which serves every
        window partitioned by that key and more (the customer's payees, days, currencies)."""
        from pyspark.sql import functions as F

        sums = self._sums()
        data = history
        if sums:
            data = data.withColumns({f"v_{item.name}": item.value for item in sums})
        base = data
        stages: dict[str, list[dict[str, Any]]] = {}

        def stage(family: str) -> list[dict[str, Any]]:
            return stages.setdefault(family, [{}, {}, {}])

        for item in sums:
            stage(item.partition[0])[2][item.name] = _running_sum(item)
        for spec in self.plan.windows.values():
            if spec.aggregate in (Aggregate.SUM, Aggregate.COUNT):
                continue
            for partition in _partitions(spec):
                steps = stage(partition[0])
                name = _sum_name(spec, partition)
                by_day = spec.aggregate is Aggregate.COUNT_DISTINCT and spec.span is Span.SAME_DAY
                if by_day and self._one_zone:
                    prior, first, value = _distinct_by_day(spec, partition, name)
                    steps[0][f"_prior{name}"] = prior
                    steps[1][f"_first{name}"] = first
                    steps[2][name] = value
                else:
                    steps[2][name] = _ranged(spec, partition, self._one_zone)
        families = sorted(stages, key=_FAMILIES.index)
        for index, family in enumerate(families):
            if index > 0 or family != "cust":  # the history table is spread by customer
                data = data.repartition(parts, family)
            for columns in stages[family]:
                if columns:
                    data = data.withColumns(columns)
        data = _subtract_before_start(data, base, sums)
        inbound = "history.inbound_24h"
        if self.plan.history_keys & {inbound, "history.inbound_24h_pct"}:
            data = data.withColumn(
                "_inbound",
                F.when(F.col("has_account"), F.col("p_in_acct")).otherwise(F.col("p_in_cust")),
            )
        keys = sorted(self.plan.history_keys)
        return data.select(
            "row", *(self._history_value(key).alias(self._names[key]) for key in keys)
        )

    def _sums(self) -> list[_Sum]:
        """Sums and counts over history, computed as (before this row) − (before the start)."""
        from pyspark.sql import functions as F

        executed = F.col("executed")
        amount = F.col("amount")
        keys = self.plan.history_keys
        sums: list[_Sum] = []
        if "counterparty.first_seen" in keys:
            sums.append(_Sum("p_seen", ("cust", "payee"), None, executed.cast("long")))
        if keys & {"history.inbound_24h", "history.inbound_24h_pct"}:
            inbound = F.when(executed & (F.col("direction") == Direction.IN.value), amount)
            value = inbound.otherwise(F.lit(0)).cast("long")
            sums.append(_Sum("p_in_acct", ("acct", "cur"), DAY_US, value))
            sums.append(_Sum("p_in_cust", ("cust", "cur"), DAY_US, value))
        if "history.outbound_count_24h" in keys:
            out = executed & (F.col("direction") == Direction.OUT.value)
            sums.append(_Sum("p_out", ("cust",), DAY_US, out.cast("long")))
        if "history.same_payee_count_today" in keys:
            sums.append(self._day_sum("p_payee_today", ("cust", "payee"), executed.cast("long")))
        for spec in self.plan.windows.values():
            if spec.aggregate not in (Aggregate.SUM, Aggregate.COUNT):
                continue
            keep = executed & _passes(spec)
            if spec.aggregate is Aggregate.SUM:
                value = F.when(keep, amount).otherwise(F.lit(0)).cast("long")
            elif spec.measure is Measure.COUNTERPARTY:
                value = (keep & F.col("has_payee")).cast("long")
            else:
                value = keep.cast("long")
            for partition in _partitions(spec):
                name = _sum_name(spec, partition)
                if spec.span is Span.SAME_DAY:
                    sums.append(self._day_sum(name, partition, value))
                else:
                    sums.append(_Sum(name, partition, _sum_start(spec), value))
        return sums

    def _day_sum(self, name: str, partition: tuple[str, ...], value: Any) -> _Sum:
        """A sum since the row's local midnight: over the rows sharing it (one time zone), or
        with the midnight as an as-of start (rows of other zones may lie on either side)."""
        if self._one_zone:
            return _Sum(name, (*partition, "midnight"), None, value)
        return _Sum(name, partition, "midnight", value)

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
            column = F.col(_sum_name(spec, partition))
            if spec.aggregate in (Aggregate.SUM, Aggregate.COUNT):
                return _with_current(spec, column)
            return column

        partitions = _partitions(spec)
        if spec.key is WindowKey.ACCOUNT:
            first, fallback = partitions
            value = F.when(F.col("has_account"), over(first)).otherwise(over(fallback))
        else:
            value = over(partitions[0])
        if spec.key in (WindowKey.COUNTERPARTY, WindowKey.PAYEE):
            value = F.when(F.col("has_payee"), value).otherwise(F.lit(0))
        if spec.same_purpose:  # an event without a purpose has no same-purpose records: 0
            value = F.when(F.col("has_purpose"), value).otherwise(F.lit(0))
        return value


Start = int | str | None


@dataclass(frozen=True)
class _Sum:
    """A sum over a partition's executed history between a start instant and this row."""

    name: str
    partition: tuple[str, ...]
    # None: the whole history; an int: a fixed reach back from the row's own timestamp, in
    # microseconds; a str: the column holding each row's own start instant
    start: Start
    value: Any  # per-row contribution as a record (already filtered)


def _partitions(spec: WindowSpec) -> list[tuple[str, ...]]:
    purpose = ("purpose",) if spec.same_purpose else ()
    if spec.key is WindowKey.COUNTERPARTY:
        return [("cust", "payee", *purpose)]
    if spec.key is WindowKey.ACCOUNT:
        return [("acct", *purpose), ("cust", *purpose)]
    if spec.key is WindowKey.PAYEE:
        return [("payee", *purpose)]
    if spec.key is WindowKey.BRANCH:
        return [("branch", *purpose)]
    return [("cust", *purpose)]


def _sum_name(spec: WindowSpec, partition: tuple[str, ...]) -> str:
    return f"p_{spec.name}_{'_'.join(partition)}"


def _sum_start(spec: WindowSpec) -> Start:
    if spec.span is Span.SAME_DAY:
        return "midnight"
    length = spec.fixed_length_us
    return (
        "opened_midnight" if length is None else length
    )  # the smallest long when there is no account


_FAMILIES = ("cust", "acct", "payee", "branch")


def _running_sum(item: _Sum) -> Any:
    """Σ value over the partition's rows before this one (a running sum), minus, for a fixed
    reach, Σ over its rows before the start (a range frame over event time)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    value = F.col(f"v_{item.name}")
    before = (
        Window.partitionBy(*item.partition)
        .orderBy("ts", "row")  # stream order: the stream is in timestamp order
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    total = F.coalesce(F.sum(value).over(before), F.lit(0))
    if isinstance(item.start, int):
        early = (
            Window.partitionBy(*item.partition)
            .orderBy("ts")
            .rangeBetween(Window.unboundedPreceding, -(item.start + 1))
        )
        total = total - F.coalesce(F.sum(value).over(early), F.lit(0))
    return total


def _subtract_before_start(data: Any, base: Any, sums: list[_Sum]) -> Any:
    """For sums whose start is each row's own (its account's opening; its local midnight when
    the stream has several time zones), subtract Σ over the partition's rows strictly before
    the start: an as-of lookup, the start instants merged into the partition's timeline as one
    sort, joined back by row. Never below 0 (a start after the row: empty history)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    groups: dict[tuple[tuple[str, ...], str], list[_Sum]] = {}
    for item in sums:
        if isinstance(item.start, str):
            groups.setdefault((item.partition, item.start), []).append(item)
    for (partition, start), group in groups.items():
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
        data = data.join(earlier, "row").withColumns(
            {
                item.name: F.greatest(F.col(item.name) - F.col(f"q_{item.name}"), F.lit(0))
                for item in group
            }
        )
    return data


def _with_current(spec: WindowSpec, history: Any) -> Any:
    from pyspark.sql import functions as F

    if not spec.include_current:
        return history
    mine = _passes(spec)
    if spec.aggregate is Aggregate.SUM:
        return history + F.when(mine, F.col("amount")).otherwise(F.lit(0))
    if spec.measure is Measure.COUNTERPARTY:
        mine = mine & F.col("has_payee")
    return history + F.when(mine, F.lit(1)).otherwise(F.lit(0))


def _reach(spec: WindowSpec) -> int | None:
    """How far before a row its window can start, in microseconds; None: the whole history."""
    if spec.span is Span.SAME_DAY:
        return _SAME_DAY_REACH
    length = spec.fixed_length_us
    return _UNBOUNDED if length is None else length


def _start(spec: WindowSpec) -> Any:
    from pyspark.sql import functions as F

    if spec.span is Span.SAME_DAY:
        return F.col("midnight")
    return F.col("opened_midnight")  # the smallest long when there is no account


def _passes(spec: WindowSpec) -> Any:
    """Whether the row's record passes the window's kind, direction, channel, currency and age
    filters."""
    from pyspark.sql import functions as F

    test = F.lit(True)
    if spec.kinds:
        test = test & F.col("kind").isin([kind.value for kind in spec.kinds])
    if spec.direction is not None:
        test = test & (F.col("direction") == spec.direction.value)
    if spec.channels:
        test = test & F.col("channel").isin([channel.value for channel in spec.channels])
    currency = spec.effective_currency
    if currency is not None:
        test = test & (F.col("currency") == currency.value)
    if spec.min_customer_age is not None:
        test = test & (F.col("age") >= F.lit(spec.min_customer_age))  # unknown age is -1
    return test


def _distinct_parts(spec: WindowSpec) -> tuple[Any, Any, str]:
    """A count_distinct window's history records, whether the row itself counts, and the
    column of the value counted."""
    from pyspark.sql import functions as F

    member = F.col("executed") & _passes(spec)
    mine = _passes(spec) if spec.include_current else F.lit(False)
    if spec.measure is Measure.CUSTOMER:
        return member, mine, "cust_code"
    return member & F.col("has_payee"), mine & F.col("has_payee"), "payee_code"


def _distinct_by_day(
    spec: WindowSpec, partition: tuple[str, ...], name: str
) -> tuple[Any, Any, Any]:
    """A same-day count_distinct in a one-zone stream, as three steps: per row, how many
    earlier records of its day carry its own value; whether it is its value's first record of
    the day; the distinct count, a running sum of the first flags over the day."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    member, mine, value = _distinct_parts(spec)
    same_value = (
        Window.partitionBy(*partition, "midnight", value)
        .orderBy("ts", "row")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    prior = F.coalesce(F.sum(member.cast("long")).over(same_value), F.lit(0))
    first = (member & (F.col(f"_prior{name}") == 0)).cast("long")
    today = (
        Window.partitionBy(*partition, "midnight")
        .orderBy("ts", "row")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    seen = F.coalesce(F.sum(f"_first{name}").over(today), F.lit(0))
    return prior, first, seen + F.when(mine & (F.col(f"_prior{name}") == 0), 1).otherwise(0)


def _ranged(spec: WindowSpec, partition: tuple[str, ...], one_zone: bool) -> Any:
    """A max or count_distinct window over ``partition``, the row itself included as the spec
    says. The history is two frames: rows at an earlier timestamp within the window's reach (a
    range frame over event time) and rows at the same timestamp earlier in the stream. With a
    fixed reach both are native aggregates; with a start of the row's own (its local midnight,
    its account's opening) the records of the reach are collected and cut at the start."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    member = F.col("executed") & _passes(spec)
    mine = _passes(spec) if spec.include_current else F.lit(False)
    if spec.aggregate is Aggregate.MAX:
        value = F.col("amount")
    elif spec.measure is Measure.CUSTOMER:
        value = F.col("cust_code")
    else:
        value = F.col("payee_code")
        member, mine = member & F.col("has_payee"), mine & F.col("has_payee")
    reach = _reach(spec)
    earlier = (
        Window.partitionBy(*partition)
        .orderBy("ts")
        .rangeBetween(Window.unboundedPreceding if reach is None else -reach, -1)
    )
    same_time = (
        Window.partitionBy(*partition, "ts")
        .orderBy("row")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    own = F.when(mine, value).otherwise(F.lit(0))
    if spec.aggregate is Aggregate.MAX and spec.span is Span.SAME_DAY and one_zone:
        today = (
            Window.partitionBy(*partition, "midnight")
            .orderBy("ts", "row")
            .rowsBetween(Window.unboundedPreceding, -1)
        )
        return F.greatest(F.coalesce(F.max(F.when(member, value)).over(today), F.lit(0)), own)
    if spec.span in (Span.HOURS, Span.DAYS):
        kept = F.when(member, value)
        if spec.aggregate is Aggregate.MAX:
            return F.greatest(
                F.coalesce(F.max(kept).over(earlier), F.lit(0)),
                F.coalesce(F.max(kept).over(same_time), F.lit(0)),
                own,
            )
        values = F.array_union(
            F.collect_set(kept).over(earlier), F.collect_set(kept).over(same_time)
        )
    else:
        record = F.when(member, F.struct(F.col("ts").alias("t"), value.alias("v")))
        records = F.concat(
            F.collect_list(record).over(earlier), F.collect_list(record).over(same_time)
        )
        start = _start(spec)
        found = F.transform(F.filter(records, lambda x: x["t"] >= start), lambda x: x["v"])
        if spec.aggregate is Aggregate.MAX:
            return F.greatest(F.coalesce(F.array_max(found), F.lit(0)), own)
        values = F.array_distinct(found)
    mine_value = F.when(mine, F.array(value)).otherwise(F.array().cast("array<long>"))
    return F.size(F.array_union(values, mine_value))
