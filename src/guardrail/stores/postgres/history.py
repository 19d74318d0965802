"""Executed history in PostgreSQL, shared by every teller process of the bank.

Records are written once (the event id is the primary key). A screening asks for the windows
and derived history features its rules can still use in one query
(:meth:`PostgresHistoryStore.window_values`; one statement per set of windows and shape of
event, a window the event's shape makes 0 left out):
the customer's and account's records since the earliest window start are read through covering
indexes on (customer, time) and (account, time), and each window is one ``FILTER`` aggregate over
them, as of the event's timestamp. The event itself joins the rows as one ``VALUES`` row, so
``include_current`` counts it exactly once, as :func:`guardrail.context.windows.compute_window`
does. The statement is prepared once per connection, its parameters typed int8 or text, and
sent straight through libpq, without a cursor (some 50 µs less per screening). Retention
deletes old rows in the database; the payees each customer has paid are kept
apart (two earliest per payee) and never expire, so "first seen" means never seen before.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

import psycopg
from psycopg import sql
from psycopg.abc import AdaptContext
from psycopg.adapt import AdaptersMap
from psycopg.errors import error_from_result
from psycopg.pq import ExecStatus
from psycopg.types.numeric import Int8Dumper
from psycopg_pool import ConnectionPool, PoolTimeout

from guardrail.context.history import HistoryRecord, utc_micros
from guardrail.context.history.records import (
    ROW_COLUMNS,
    KeyedReads,
    record_from_row,
    record_row,
)
from guardrail.context.history.retention import micros_or_none
from guardrail.context.windows import (
    HistoryValue,
    derived_day_starts,
    derived_values,
    needs_records,
    window_start,
)
from guardrail.errors import StoreError
from guardrail.lang.declarations import Aggregate, Measure, Span, WindowKey, WindowSpec
from guardrail.model.event import Event
from guardrail.stores.postgres.connect import describe, open_pool
from guardrail.stores.postgres.migrations import migrate
from guardrail.stores.postgres.watchdog import ReadWatchdog
from guardrail.stores.urls import StoreURL

COMPONENT = "history"
_COLUMNS = ROW_COLUMNS
MIGRATIONS: tuple[str, ...] = (
    # 1: records, the two indexes windows read through, and the payees seen per customer
    """
    CREATE TABLE guardrail_history (
        event_id text PRIMARY KEY,
        customer_id text NOT NULL,
        account_id text,
        kind text NOT NULL,
        direction text NOT NULL,
        channel text NOT NULL,
        amount_fen bigint NOT NULL,
        ts_us bigint NOT NULL,
        ts_iso text NOT NULL,
        counterparty_account text,
        currency text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX guardrail_history_customer_ts ON guardrail_history (customer_id, ts_us)
        INCLUDE (event_id, account_id, kind, direction, channel, amount_fen,
                 counterparty_account, currency);
    CREATE INDEX guardrail_history_account_ts ON guardrail_history (account_id, ts_us)
        INCLUDE (event_id, customer_id, kind, direction, channel, amount_fen,
                 counterparty_account, currency);
    CREATE INDEX guardrail_history_ts ON guardrail_history (ts_us);
    CREATE TABLE guardrail_payee_seen (
        customer_id text NOT NULL,
        counterparty_account text NOT NULL,
        ts_us bigint NOT NULL,
        event_id text NOT NULL,
        ts_iso text NOT NULL,
        PRIMARY KEY (customer_id, counterparty_account, ts_us, event_id)
    );
    """,
    # 2: branch, purpose and age per record, for windows keyed across customers (by branch and
    # by payee account); answered from records, see guardrail.context.windows.needs_records
    """
    ALTER TABLE guardrail_history ADD COLUMN branch_id text, ADD COLUMN purpose text,
        ADD COLUMN customer_age integer;
    CREATE INDEX guardrail_history_branch_ts ON guardrail_history (branch_id, ts_us);
    CREATE INDEX guardrail_history_payee_ts ON guardrail_history (counterparty_account, ts_us);
    """,
    # 3: the branch and payee indexes cover what windows across customers read, so those
    # windows are index-only scans inside the screening's one statement
    """
    DROP INDEX guardrail_history_branch_ts;
    CREATE INDEX guardrail_history_branch_ts ON guardrail_history (branch_id, ts_us)
        INCLUDE (event_id, customer_id, kind, direction, channel, amount_fen,
                 counterparty_account, currency, purpose, customer_age);
    DROP INDEX guardrail_history_payee_ts;
    CREATE INDEX guardrail_history_payee_ts ON guardrail_history (counterparty_account, ts_us)
        INCLUDE (event_id, customer_id, kind, direction, channel, amount_fen, currency,
                 purpose, customer_age);
    """,
)

_INSERT = (
    f"INSERT INTO guardrail_history ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"
)
_NOTE_PAYEE = "INSERT INTO guardrail_payee_seen VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
# Keeps the table bounded by distinct payees; an extra row left by a concurrent writer does not
# change any answer (first-seen asks whether *any* earlier record exists).
_KEEP_TWO_EARLIEST = (
    "DELETE FROM guardrail_payee_seen WHERE customer_id = %(c)s AND counterparty_account = %(p)s"
    " AND (ts_us, event_id) > (SELECT ts_us, event_id FROM guardrail_payee_seen"
    " WHERE customer_id = %(c)s AND counterparty_account = %(p)s"
    " ORDER BY ts_us, event_id LIMIT 1 OFFSET 1)"
)
_NO_LOWER_BOUND = -(1 << 62)
_HOUR_US = 3_600_000_000
_RECHECK_S = 0.05  # a read waiting for a connection looks for one put aside this often
_DAY_US = 24 * _HOUR_US
# Every Python int is sent as int8: psycopg would type each by its size (int2, int4, int8), and
# each combination of types would be a statement of its own, prepared and planned again.
_INT8_EVERYWHERE = AdaptersMap(psycopg.adapters)
_INT8_EVERYWHERE.register_dumper(int, Int8Dumper)
_PAYEE_KEYS = (WindowKey.COUNTERPARTY, WindowKey.PAYEE)
# What the statement depends on besides the windows: whether the event has an account, a payee
# account and a purpose (windows keyed or filtered by a missing one are 0 without a read).
_Shape = tuple[bool, bool, bool]
_DERIVED = (
    "counterparty.first_seen",
    "history.inbound_24h",
    "history.outbound_count_24h",
    "history.same_payee_count_today",
)


def _in(column: str, values: Iterable[str]) -> sql.Composable:
    return sql.SQL("{} IN ({})").format(
        sql.Identifier(column), sql.SQL(", ").join(sql.Literal(v) for v in values)
    )


def _is_zero(spec: WindowSpec, shape: _Shape) -> bool:
    """0 by definition for this shape of event (see compute_window): nothing to read."""
    _, has_payee, has_purpose = shape
    return (spec.key in _PAYEE_KEYS and not has_payee) or (spec.same_purpose and not has_purpose)


def _aggregates_candidates(spec: WindowSpec, shape: _Shape) -> bool:
    """Whether the window's column is an aggregate over the candidate rows (not a constant or
    a scalar subquery of its own rows)."""
    return not _is_zero(spec, shape) and not needs_records(spec)


def _window_column(index: int, spec: WindowSpec, shape: _Shape) -> sql.Composable:
    """One window as an aggregate over the candidate rows; ``%(s<index>)s`` is its start."""
    by_account = shape[0]
    if _is_zero(spec, shape):
        return sql.SQL("0")
    if needs_records(spec):
        return _records_window_column(index, spec, by_account)
    conditions: list[sql.Composable] = [sql.SQL("ts_us >= {}").format(sql.Placeholder(f"s{index}"))]
    if spec.key is WindowKey.ACCOUNT and by_account:
        conditions.append(sql.SQL("account_id = %(a)s"))
    else:
        conditions.append(sql.SQL("customer_id = %(c)s"))
    if spec.key is WindowKey.COUNTERPARTY:
        conditions.append(sql.SQL("counterparty_account = %(p)s"))
    if not spec.include_current:
        conditions.append(sql.SQL("NOT is_current"))
    conditions.extend(_filters(spec))
    return _aggregate(spec).format(sql.SQL(" AND ").join(conditions))


def _filters(spec: WindowSpec) -> list[sql.Composable]:
    """The conditions on kind, direction, channel and currency every window may have."""
    conditions: list[sql.Composable] = []
    if spec.kinds:
        conditions.append(_in("kind", (kind.value for kind in spec.kinds)))
    if spec.direction is not None:
        conditions.append(sql.SQL("direction = {}").format(sql.Literal(spec.direction.value)))
    if spec.channels:
        conditions.append(_in("channel", (channel.value for channel in spec.channels)))
    currency = spec.effective_currency
    if currency is not None:
        conditions.append(sql.SQL("currency = {}").format(sql.Literal(currency.value)))
    return conditions


def _aggregate(spec: WindowSpec) -> sql.SQL:
    """The aggregate of a window, ``{}`` standing for its condition."""
    if spec.aggregate is Aggregate.SUM:
        return sql.SQL("COALESCE(SUM(amount_fen) FILTER (WHERE {}), 0)")
    if spec.aggregate is Aggregate.MAX:
        return sql.SQL("COALESCE(MAX(amount_fen) FILTER (WHERE {}), 0)")
    if spec.aggregate is Aggregate.COUNT_DISTINCT:
        if spec.measure is Measure.CUSTOMER:
            return sql.SQL("COUNT(DISTINCT customer_id) FILTER (WHERE {})")
        return sql.SQL("COUNT(DISTINCT counterparty_account) FILTER (WHERE {})")
    if spec.measure is Measure.COUNTERPARTY:
        return sql.SQL("COUNT(counterparty_account) FILTER (WHERE {})")
    return sql.SQL("COUNT(*) FILTER (WHERE {})")


# A window the candidate rows cannot answer (keyed across customers, or filtered by purpose or
# age) reads its own rows, through the index of its key, as a scalar subquery of the statement.
_RECORD_KEYS = {
    WindowKey.BRANCH: "branch_id = %(b)s",
    WindowKey.PAYEE: "counterparty_account = %(p)s",
    WindowKey.COUNTERPARTY: "customer_id = %(c)s AND counterparty_account = %(p)s",
    WindowKey.CUSTOMER: "customer_id = %(c)s",
}
_RECORD_ROWS = (
    "SELECT customer_id, kind, direction, channel, amount_fen, counterparty_account, currency,"
    " purpose, customer_age FROM guardrail_history WHERE {key} AND ts_us >= {start}"
    " AND ts_us <= %(end)s AND event_id <> %(e)s"
)
_CURRENT_ROW = (
    " UNION ALL SELECT %(c)s::text, %(ck)s::text, %(cd)s::text, %(cch)s::text,"
    " %(camt)s::bigint, %(cp)s::text, %(ccur)s::text, %(cpur)s::text, %(cage)s::integer"
)


def _records_window_column(index: int, spec: WindowSpec, by_account: bool) -> sql.Composable:
    """A window answered from its own rows (and the event's, when it counts the event), with
    exactly :func:`guardrail.context.windows.compute_window`'s filters."""
    if spec.key is WindowKey.ACCOUNT:
        key = "account_id = %(a)s" if by_account else _RECORD_KEYS[WindowKey.CUSTOMER]
    else:
        key = _RECORD_KEYS[spec.key]
    rows = sql.SQL(_RECORD_ROWS).format(key=sql.SQL(key), start=sql.Placeholder(f"s{index}"))
    if spec.include_current:
        rows = sql.Composed([rows, sql.SQL(_CURRENT_ROW)])
    conditions = _filters(spec)
    if spec.same_purpose:
        conditions.append(sql.SQL("purpose = %(pur)s"))  # no purpose: NULL, so 0
    if spec.min_customer_age is not None:
        conditions.append(sql.SQL("customer_age >= {}").format(sql.Literal(spec.min_customer_age)))
    where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
    return sql.SQL("(SELECT {} FROM ({}) AS {})").format(
        _aggregate(spec).format(where), rows, sql.Identifier(f"w{index}")
    )


_PAYEE_SEEN = sql.SQL(
    ", EXISTS (SELECT 1 FROM guardrail_payee_seen WHERE customer_id = %(c)s"
    " AND counterparty_account = %(p)s AND ts_us <= %(end)s AND event_id <> %(e)s)"
)
_SAME_PAYEE_TODAY = sql.SQL(
    ", COUNT(*) FILTER (WHERE NOT is_current AND customer_id = %(c)s"
    " AND ts_us >= %(today)s AND counterparty_account = %(p)s)"
)
# without a payee account, first seen and same payee today are not read (derived_values)
_NO_PAYEE = (sql.SQL(", false"), sql.SQL(", 0"))
_DERIVED_COLUMNS = sql.SQL(
    ", COALESCE(SUM(amount_fen) FILTER (WHERE NOT is_current AND ts_us >= %(day_ago)s"
    " AND direction = 'in' AND currency = %(cur)s AND {}), 0)"
    ", COUNT(*) FILTER (WHERE NOT is_current AND customer_id = %(c)s AND ts_us >= %(day_ago)s"
    " AND direction = 'out')"
)

_ACCOUNT_CANDIDATES = sql.SQL(
    " UNION ALL "
    "SELECT customer_id, account_id, kind, direction, channel, amount_fen, ts_us,"
    " counterparty_account, currency, false FROM guardrail_history"
    " WHERE account_id = %(a)s AND customer_id <> %(c)s"
    " AND ts_us >= %(since)s AND ts_us <= %(end)s AND event_id <> %(e)s"
)
# The candidate rows: the customer's, the account's (other customers on the same account), the
# event itself; everything in [since, end], the event's stored copy (if any) left out.
_CANDIDATES = sql.SQL(
    "WITH candidates AS ("
    "SELECT customer_id, account_id, kind, direction, channel, amount_fen, ts_us,"
    " counterparty_account, currency, false AS is_current FROM guardrail_history"
    " WHERE customer_id = %(c)s AND ts_us >= %(since)s AND ts_us <= %(end)s AND event_id <> %(e)s"
    "{} UNION ALL "
    "SELECT %(c)s::text, %(a)s::text, %(ck)s::text, %(cd)s::text, %(cch)s::text, %(camt)s::bigint,"
    " %(end)s::bigint, %(cp)s::text, %(ccur)s::text, true"
    ") SELECT "
)


def _local_day_start_us(event: Event) -> int:
    """The first microsecond of the event's day at its branch (``derived_day_starts``)."""
    return utc_micros(derived_day_starts(event)[1])


_PLACEHOLDER = re.compile(rb"%\((\w+)\)s")
_INT_PARAMETERS = re.compile(r"s\d+|end|since|day_ago|today|camt|cage")
_INT8_OID, _TEXT_OID = 20, 25
_STATEMENT_NAMES = itertools.count()


class _Prepared:
    """One rendered statement as the server prepares it: ``$n`` parameters, ``names`` giving
    each one's value in the parameters of :meth:`PostgresHistoryStore.window_values`, typed
    int8 or text once and for all (so it is planned once)."""

    __slots__ = ("name", "names", "text", "types")

    def __init__(self, text: bytes) -> None:
        self.name = f"guardrail_windows_{next(_STATEMENT_NAMES)}".encode()
        self.names: list[str] = []

        def number(match: re.Match[bytes]) -> bytes:
            name = match.group(1).decode()
            if name not in self.names:
                self.names.append(name)
            return b"$%d" % (self.names.index(name) + 1)

        self.text = _PLACEHOLDER.sub(number, text)
        self.types = [
            _INT8_OID if _INT_PARAMETERS.fullmatch(name) else _TEXT_OID for name in self.names
        ]


class _Query:
    """The one statement that answers a set of windows (built once per set of specs, rendered
    once per shape of event)."""

    def __init__(self, specs: Mapping[str, WindowSpec], derived: bool) -> None:
        self.keys = list(specs)
        self.specs = [specs[key] for key in self.keys]
        self.own_rows = [needs_records(spec) for spec in self.specs]
        # windows of a fixed length start that many microseconds before the event
        self.lengths_us = [spec.fixed_length_us for spec in self.specs]
        self.derived = derived
        self._rendered: dict[_Shape, _Prepared] = {}

    def _compose(self, shape: _Shape) -> sql.Composed:
        columns: list[sql.Composable] = [
            _window_column(index, spec, shape) for index, spec in enumerate(self.specs)
        ]
        if not columns:
            columns.append(sql.SQL("0"))
        by_account, has_payee, _ = shape
        # other customers' rows on the account only when a window (or the inbound sum) reads them
        reads_account = by_account and (
            self.derived
            or any(
                spec.key is WindowKey.ACCOUNT and not own
                for spec, own in zip(self.specs, self.own_rows, strict=True)
            )
        )
        # Scalar subqueries alone must not be selected FROM candidates: that would give one
        # row per candidate row; without an aggregate over candidates, select from nothing.
        aggregates = self.derived or any(_aggregates_candidates(spec, shape) for spec in self.specs)
        parts: list[sql.Composable] = [
            _CANDIDATES.format(_ACCOUNT_CANDIDATES if reads_account else sql.SQL(""))
            if aggregates
            else sql.SQL("SELECT "),
            sql.SQL(", ").join(columns),
        ]
        if self.derived:
            seen, same_payee = (_PAYEE_SEEN, _SAME_PAYEE_TODAY) if has_payee else _NO_PAYEE
            inbound_key = "account_id = %(a)s" if by_account else "customer_id = %(c)s"
            parts += [seen, _DERIVED_COLUMNS.format(sql.SQL(inbound_key)), same_payee]
        if aggregates:
            parts.append(sql.SQL(" FROM candidates"))
        return sql.Composed(parts)

    def statement(self, shape: _Shape, context: AdaptContext) -> _Prepared:
        """The statement, rendered once per shape (rendering costs more than running)."""
        prepared = self._rendered.get(shape)
        if prepared is None:
            prepared = self._rendered[shape] = _Prepared(self._compose(shape).as_bytes(context))
        return prepared


def _encoded(value: object, encoding: str) -> bytes | None:
    """A parameter in PostgreSQL's text format (int8 or text, see :class:`_Prepared`)."""
    if value is None:
        return None
    if type(value) is int:
        return b"%d" % value
    assert isinstance(value, str)
    return value.encode(encoding)


class PostgresHistoryStore(KeyedReads):
    """A :class:`~guardrail.context.history.HistoryStore` (and
    :class:`~guardrail.context.windows.WindowedHistory`) in PostgreSQL; thread-safe, and any
    number of processes can share it. Open it with :func:`guardrail.stores.open_history_store`.
    It answers every window in its one statement, those across customers included.
    """

    answers_every_window = True

    def __init__(
        self,
        url: StoreURL,
        *,
        retention: timedelta | None = None,
        pool_size: int = 4,
        timeout_s: float = 5.0,
        statement_timeout_ms: int = 5000,
    ) -> None:
        self._retention_us = micros_or_none(retention, "retention")
        self.url = url
        self._timeout_s = timeout_s
        self._pool: ConnectionPool = open_pool(
            url,
            max_size=pool_size,
            connect_timeout_s=timeout_s,
            statement_timeout_ms=statement_timeout_ms,
            what="history store",
            # The window statement is prepared at once and planned once: custom plans would
            # re-plan every screening, and planning costs more than running it.
            settings={"plan_cache_mode": "force_generic_plan"},
            prepare_threshold=0,
            context=_INT8_EVERYWHERE,
        )
        self._lock = threading.Lock()
        self._queries: dict[tuple[tuple[tuple[str, int], ...], bool], _Query] = {}
        try:
            with self._pool.connection() as conn:
                migrate(conn, COMPONENT, MIGRATIONS, url.masked)
                newest = conn.execute("SELECT MAX(ts_us) FROM guardrail_history").fetchone()
        except psycopg.Error as exc:
            self._pool.close()
            raise StoreError(f"history store {url.masked}: {describe(exc, url)}") from None
        except BaseException:
            self._pool.close()
            raise
        self._newest: int | None = None if newest is None or newest[0] is None else int(newest[0])
        self._evicted_to: int | None = None
        self._idle: list[tuple[psycopg.Connection[Any], psycopg.Cursor[Any]]] = []
        # per connection: its client encoding and the window statements prepared on it
        self._prepared_on: weakref.WeakKeyDictionary[
            psycopg.Connection[Any], tuple[str, set[bytes]]
        ] = weakref.WeakKeyDictionary()
        self._closed = False
        self.round_trips = 0  # statements sent by reads, for the benchmark and the tests
        self._watchdog: ReadWatchdog | None = None

    def bound_reads(self, budget_s: float) -> None:
        """Every read from now on waits at most ``budget_s`` for a connection and for its
        answer, then fails with ``HistoryTimeout`` (see :mod:`.watchdog`); no thread hop."""
        old, self._watchdog = (
            self._watchdog,
            ReadWatchdog(budget_s, f"history store {self.url.masked}"),
        )
        if old is not None:
            old.close()

    @contextmanager
    def _reading(self, what: str) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor on a pooled connection for one read, under the read budget if there is
        one."""
        watchdog = self._watchdog
        conn, cursor = self._checkout(self._timeout_s if watchdog is None else watchdog.budget_s)
        done = False
        try:
            if watchdog is None:
                yield cursor
            else:
                with watchdog.watch(conn, what):
                    yield cursor
            done = True
        finally:
            self._checkin(conn, cursor, done)

    # The connection (and cursor) of the last read is kept aside for the next one: going
    # through the pool and making a cursor cost more than a tenth of a screening, and the pool
    # hands its connections out in turn, so each read would wake a colder server process.
    def _checkout(self, wait_s: float) -> tuple[psycopg.Connection[Any], psycopg.Cursor[Any]]:
        try:
            return self._idle.pop()
        except IndexError:
            pass
        deadline = time.monotonic() + wait_s
        while True:
            # in short waits: a connection may be put aside meanwhile instead of in the pool
            left = deadline - time.monotonic()
            try:
                conn = self._pool.getconn(timeout=max(0.001, min(_RECHECK_S, left)))
            except PoolTimeout:
                if left <= _RECHECK_S:
                    raise
            else:
                return conn, conn.cursor()
            try:
                return self._idle.pop()
            except IndexError:
                pass

    def _checkin(
        self, conn: psycopg.Connection[Any], cursor: psycopg.Cursor[Any], done: bool
    ) -> None:
        # only a connection whose read went well, and only one: the others go back to the pool,
        # which drops broken ones
        if done and not self._idle and not self._closed and not conn.broken:
            self._idle.append((conn, cursor))
        else:
            self._pool.putconn(conn)

    # -- errors ---------------------------------------------------------------------------
    def _fail(self, what: str, exc: BaseException) -> StoreError:
        if isinstance(exc, PoolTimeout):
            waited = self._timeout_s if self._watchdog is None else self._watchdog.budget_s
            return StoreError(
                f"history store {self.url.masked}: {what}: no connection within "
                f"{waited:g}s (is the server down?)"
            )
        return StoreError(f"history store {self.url.masked}: {what}: {describe(exc, self.url)}")

    # -- writes ---------------------------------------------------------------------------
    def record(self, rec: HistoryRecord) -> None:
        """Store ``rec`` durably; recording the same event id again changes nothing."""
        self.record_many((rec,))

    def record_many(self, recs: Iterable[HistoryRecord]) -> None:
        """Store several records in one transaction (bulk loads use COPY)."""
        records = list(recs)
        if not records:
            return
        rows = [record_row(rec) for rec in records]
        payees = [
            (rec.customer_id, rec.counterparty_account, row[7], rec.event_id, row[8])
            for rec, row in zip(records, rows, strict=True)
            if rec.counterparty_account is not None
        ]
        cutoff = self._cutoff(max(int(str(row[7])) for row in rows))
        kept = rows if cutoff is None else [row for row in rows if int(str(row[7])) >= cutoff]
        try:
            with self._pool.connection() as conn, conn.transaction():
                if len(kept) + len(payees) > 64:
                    # a bulk load, not a teller's write: the screening timeout does not apply
                    conn.execute("SET LOCAL statement_timeout = '10min'")
                    self._copy(conn, kept, payees)
                else:
                    with conn.pipeline(), conn.cursor() as cursor:
                        if kept:
                            cursor.executemany(_INSERT, kept)
                        if payees:
                            cursor.executemany(_NOTE_PAYEE, payees)
                            cursor.executemany(
                                _KEEP_TWO_EARLIEST,
                                [{"c": c, "p": p} for c, p in {(r[0], r[1]) for r in payees}],
                            )
                self._evict(conn, cutoff)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._fail("cannot record history", exc) from None

    def _copy(
        self,
        conn: psycopg.Connection[Any],
        rows: Sequence[tuple[object, ...]],
        payees: Sequence[tuple[object, ...]],
    ) -> None:
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS guardrail_history_load"
            " (LIKE guardrail_history INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY guardrail_history_load ({_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO guardrail_history ({_COLUMNS}) SELECT {_COLUMNS}"
                " FROM guardrail_history_load ON CONFLICT (event_id) DO NOTHING"
            )
            if not payees:
                return
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS guardrail_payee_load"
                " (LIKE guardrail_payee_seen) ON COMMIT DELETE ROWS"
            )
            with cursor.copy("COPY guardrail_payee_load FROM STDIN") as copy:
                for payee in payees:
                    copy.write_row(payee)
            cursor.execute(
                "INSERT INTO guardrail_payee_seen SELECT customer_id, counterparty_account, ts_us,"
                " event_id, ts_iso FROM (SELECT *, row_number() OVER (PARTITION BY customer_id,"
                " counterparty_account ORDER BY ts_us, event_id) AS n FROM guardrail_payee_load)"
                " AS ranked WHERE n <= 2 ON CONFLICT DO NOTHING"
            )
            cursor.execute(
                "DELETE FROM guardrail_payee_seen AS s USING (SELECT customer_id,"
                " counterparty_account, ts_us, event_id, row_number() OVER (PARTITION BY"
                " customer_id, counterparty_account ORDER BY ts_us, event_id) AS n"
                " FROM guardrail_payee_seen WHERE (customer_id, counterparty_account) IN"
                " (SELECT customer_id, counterparty_account FROM guardrail_payee_load)) AS r"
                " WHERE r.n > 2 AND s.customer_id = r.customer_id"
                " AND s.counterparty_account = r.counterparty_account"
                " AND s.ts_us = r.ts_us AND s.event_id = r.event_id"
            )

    def _cutoff(self, newest_in_batch: int) -> int | None:
        with self._lock:
            if self._newest is None or newest_in_batch > self._newest:
                self._newest = newest_in_batch
            if self._retention_us is None:
                return None
            return self._newest - self._retention_us

    def _evict(self, conn: psycopg.Connection[Any], cutoff: int | None) -> None:
        # Deleting is cheap when nothing is old, but not free: do it once per hour of event time.
        if cutoff is None:
            return
        with self._lock:
            due = self._evicted_to is None or cutoff - self._evicted_to >= 3_600_000_000
            if due:
                self._evicted_to = cutoff
        if due:
            conn.execute("DELETE FROM guardrail_history WHERE ts_us < %s", (cutoff,))

    def evict_before(self, cutoff: datetime) -> int:
        """Delete records older than ``cutoff``; returns how many."""
        try:
            with self._pool.connection() as conn:
                cursor = conn.execute(
                    "DELETE FROM guardrail_history WHERE ts_us < %s", (utc_micros(cutoff),)
                )
                return cursor.rowcount
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._fail("cannot evict history", exc) from None

    # -- reads ----------------------------------------------------------------------------
    def _select(self, column: str, value: str, since: datetime | None) -> list[HistoryRecord]:
        query = f"SELECT {_COLUMNS} FROM guardrail_history WHERE {column} = %s AND ts_us >= %s"
        query += " ORDER BY ts_us, event_id"
        lower = _NO_LOWER_BOUND if since is None else utc_micros(since)
        self.round_trips += 1
        try:
            with self._reading(f"a read by {column}") as cursor:
                rows = cursor.execute(query.encode(), (value, lower)).fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._fail("cannot read history", exc) from None
        return [record_from_row(row) for row in rows]

    def earliest_with_counterparty(
        self, customer_id: str, counterparty_account: str
    ) -> Sequence[tuple[datetime, str]]:
        self.round_trips += 1
        try:
            with self._reading("a payee read") as cursor:
                rows = cursor.execute(
                    "SELECT ts_iso, event_id FROM guardrail_payee_seen WHERE customer_id = %s"
                    " AND counterparty_account = %s ORDER BY ts_us, event_id LIMIT 2",
                    (customer_id, counterparty_account),
                ).fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._fail("cannot read history", exc) from None
        return [(datetime.fromisoformat(ts_iso), event_id) for ts_iso, event_id in rows]

    def window_values(
        self,
        event: Event,
        specs: Mapping[str, WindowSpec],
        current: HistoryRecord,
        *,
        derived: bool,
    ) -> dict[str, HistoryValue]:
        """Every window of ``specs`` and (with ``derived``) the derived history features, in
        one query as of the event's timestamp."""
        # Keyed by the spec objects' identities: the cached query holds them, so an id cannot
        # be reused by another spec while its entry exists.
        cache_key = (tuple((key, id(spec)) for key, spec in specs.items()), derived)
        query = self._queries.get(cache_key)
        if query is None:
            query = _Query(specs, derived)
            with self._lock:
                if len(self._queries) >= 256:
                    self._queries.clear()
                self._queries[cache_key] = query
        end = utc_micros(event.timestamp)
        payee = event.counterparty.account if event.counterparty is not None else None
        shape = (event.account is not None, payee is not None, event.purpose is not None)
        params: dict[str, object] = {
            "c": event.customer.id,
            "a": event.account.id if event.account is not None else None,
            "p": payee,
            "e": event.event_id,
            "end": end,
            "ck": current.kind.value,
            "cd": current.direction.value,
            "cch": current.channel.value,
            "camt": current.amount_fen,
            "cp": current.counterparty_account,
            "ccur": current.currency.value,
            "cpur": current.purpose,
            "cage": current.customer_age,
            "b": event.branch.id,
            "pur": event.purpose.code.value if event.purpose is not None else None,
        }
        starts: list[int] = []
        today: int | None = None  # the start of the event's branch-local day, once
        for index, spec in enumerate(query.specs):
            length = query.lengths_us[index]
            if length is not None:
                value = end - length
            elif spec.span is Span.SAME_DAY:
                if today is None:
                    today = _local_day_start_us(event)
                value = today
            else:
                start = window_start(spec, event)
                value = _NO_LOWER_BOUND if start is None else utc_micros(start)
            params[f"s{index}"] = value
            if not query.own_rows[index]:  # the others read rows of their own
                starts.append(value)
        if derived:
            day_ago = end - _DAY_US
            if today is None:
                today = _local_day_start_us(event)
            params.update(day_ago=day_ago, today=today, cur=event.amount.currency.value)
            starts.extend((day_ago, today))
        params["since"] = min(starts, default=end)
        try:
            with self._reading("the windows") as cursor:
                row = self._run(cursor.connection, query.statement(shape, cursor), params)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._fail("cannot compute windows", exc) from None
        self.round_trips += 1
        values: dict[str, HistoryValue] = {
            key: int(row[index]) for index, key in enumerate(query.keys)
        }
        if derived:
            seen, inbound, outbound, same_payee = row[max(1, len(query.keys)) :]
            values.update(
                derived_values(
                    event,
                    payee_seen_before=seen == b"t",
                    inbound=int(inbound),
                    outbound=int(outbound),
                    same_payee_today=int(same_payee),
                )
            )
        return values

    def _run(
        self, conn: psycopg.Connection[Any], statement: _Prepared, params: Mapping[str, object]
    ) -> list[bytes]:
        """The one row of ``statement`` on ``conn``, prepared there the first time; straight
        through libpq, which costs a third of what a cursor does around a round trip."""
        pgconn = conn.pgconn
        known = self._prepared_on.get(conn)
        if known is None:
            known = self._prepared_on[conn] = (conn.info.encoding, set())
        encoding, prepared = known
        if statement.name not in prepared:
            result = pgconn.prepare(statement.name, statement.text, statement.types)
            if result.status != ExecStatus.COMMAND_OK:
                raise error_from_result(result, encoding)
            prepared.add(statement.name)
        values = [_encoded(params[name], encoding) for name in statement.names]
        # libpq takes None for a NULL parameter (psycopg's own queries pass them so)
        result = pgconn.exec_prepared(statement.name, cast("list[bytes]", values))
        if result.status != ExecStatus.TUPLES_OK:
            raise error_from_result(result, encoding)
        if result.ntuples != 1:
            raise StoreError(
                f"history store {self.url.masked}: the window statement gave"
                f" {result.ntuples} rows, not one"
            )
        row: list[bytes] = []
        for column in range(result.nfields):
            value = result.get_value(0, column)
            if value is None:  # every column is a count, a sum with COALESCE or a flag
                raise StoreError(f"history store {self.url.masked}: a window came back NULL")
            row.append(value)
        return row

    def __len__(self) -> int:
        try:
            with self._pool.connection() as conn:
                row = conn.execute("SELECT COUNT(*) FROM guardrail_history").fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._fail("cannot count history", exc) from None
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        """Close the pool; the data stays in the database."""
        if self._watchdog is not None:
            self._watchdog.close()
        self._closed = True
        while self._idle:
            self._pool.putconn(self._idle.pop()[0])
        self._pool.close()

    def __enter__(self) -> PostgresHistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
