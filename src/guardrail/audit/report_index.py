"""The report index: narrow fact tables derived from the chained records, kept in the same
database and brought up to date incrementally (records are append-only, so only records
after the last indexed seq are read). Reports aggregate these tables in SQL.

Each record's JSON is parsed once, by the database, when it is indexed (one multi-path
extraction per record). The index is derived data, outside the chain: ``rebuild`` drops and
recomputes it, and a report run with ``--verify`` rebuilds it from the records it has just
verified, so a signed report never rests on an index someone could have edited.

Tables (``rpt_`` prefix): ``screening`` (one row per screened request: its first decision's
time, branch, teller, kind, channel, amount and currency, and its highest action), ``case_rule``
(the rules that hit a request), ``outcome`` (outcomes recorded), ``verdict`` (verdicts, from
counter outcomes and from the case ledger, latest wins; ``unknown`` withdraws), ``entry``
(case-ledger entries).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from guardrail.model import Action

INDEX_VERSION = 5
# Each request's local day number is stored for this UTC offset (China Standard Time, no DST),
# so the usual reports group by a column that covering indexes hold in order: no sort, no
# per-row arithmetic. Reports in another offset compute the day from ``epoch`` instead.
INDEX_OFFSET_S = 8 * 3600
# The measures every screening group is split by (folded into counts in Python).
CELLS = "currency, action, outcome, fraud, failed"
ACTION_RANK = {action.value: action.rank for action in Action}


def _rank_sql(expr: str) -> str:
    whens = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in ACTION_RANK.items())
    return f"(CASE {expr} {whens} ELSE 0 END)"


@dataclass(frozen=True)
class Dialect:
    """The few SQL spellings that differ between SQLite and PostgreSQL."""

    name: str
    param: str  # "?" or "%s"
    records: str  # the chained records' table

    @property
    def fence(self) -> str:
        """Ends a subquery so the planner keeps it (PostgreSQL would otherwise inline it and
        parse the JSON once per extracted field instead of once per record)."""
        return "" if self.name == "sqlite" else " OFFSET 0"

    def json_paths(self, column: str, paths: Sequence[str]) -> str:
        """One expression yielding the values at ``paths`` (parsed once)."""
        if self.name == "sqlite":
            return "json_extract(" + column + ", " + ", ".join(f"'$.{p}'" for p in paths) + ")"
        return column + "::jsonb"

    def item(self, j: str, index: int, path: str, *, as_int: bool = False) -> str:
        if self.name == "sqlite":
            expr = f"({j} ->> {index})"
        else:
            expr = f"({j} #>> '{{{path.replace('.', ',')}}}')"
        return f"CAST({expr} AS BIGINT)" if as_int else expr

    def epoch(self, text: str) -> str:
        if self.name == "sqlite":
            return f"CAST(strftime('%s', {text}) AS INTEGER)"
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM CAST({text} AS TIMESTAMPTZ))) AS BIGINT)"

    def fen(self, text: str) -> str:
        # Money values are decimal strings with at most two places; exact below 10**13 yuan.
        return f"CAST(ROUND(CAST({text} AS NUMERIC) * 100) AS BIGINT)"

    def greatest(self, a: str, b: str) -> str:
        return f"max({a}, {b})" if self.name == "sqlite" else f"GREATEST({a}, {b})"

    def hits(self, column: str) -> str:
        """A table expression ``h`` over the hits array (JSON text) in ``column``."""
        if self.name == "sqlite":
            return f"json_each({column}) h"
        return f"jsonb_array_elements(CAST({column} AS jsonb)) h"

    def hit_rule(self) -> str:
        return "(h.value ->> 'rule_id')"


SQLITE = Dialect("sqlite", "?", "records")
POSTGRES = Dialect("postgresql", "%s", "guardrail_audit_records")

ANALYZE_AFTER = 10_000  # records indexed in one refresh
_TABLES = (
    "rpt_meta",
    "rpt_new_decision",
    "rpt_screening",
    "rpt_case_rule",
    "rpt_outcome",
    "rpt_verdict",
    "rpt_entry",
)


def schema(d: Dialect) -> list[str]:
    big = "BIGINT"
    return [
        f"CREATE TABLE IF NOT EXISTS rpt_meta (id INTEGER PRIMARY KEY, version INTEGER NOT NULL,"
        f" indexed_seq {big} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS rpt_screening (case_id TEXT PRIMARY KEY, seq {big} NOT NULL,"
        f" epoch {big} NOT NULL, day {big} NOT NULL, branch TEXT NOT NULL, teller TEXT NOT NULL,"
        " kind TEXT NOT NULL,"
        f" channel TEXT NOT NULL, amount_fen {big} NOT NULL, currency TEXT NOT NULL,"
        f" action INTEGER NOT NULL, failed INTEGER NOT NULL, decisions INTEGER NOT NULL,"
        " outcome TEXT, fraud INTEGER, typology TEXT, rules INTEGER NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS rpt_new_decision (seq {big} PRIMARY KEY, case_id TEXT,"
        f" epoch {big}, branch TEXT, teller TEXT, kind TEXT, channel TEXT, amount_fen {big},"
        " currency TEXT, action INTEGER, failed INTEGER, hits TEXT)",
        "CREATE TABLE IF NOT EXISTS rpt_case_rule (case_id TEXT NOT NULL, rule_id TEXT NOT NULL,"
        " PRIMARY KEY (case_id, rule_id))",
        f"CREATE TABLE IF NOT EXISTS rpt_outcome (seq {big} PRIMARY KEY, case_id TEXT NOT NULL,"
        " outcome TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS rpt_verdict (seq {big} PRIMARY KEY, case_id TEXT NOT NULL,"
        " fraud INTEGER)",
        f"CREATE TABLE IF NOT EXISTS rpt_entry (seq {big} PRIMARY KEY, case_id TEXT NOT NULL,"
        f" entry TEXT NOT NULL, epoch {big} NOT NULL, case_type TEXT, branch TEXT,"
        f" typology TEXT, source_case_id TEXT, verdict TEXT, resolution TEXT,"
        f" prevented_fen {big}, prevented_cur TEXT, returned_fen {big}, returned_cur TEXT,"
        f" police INTEGER, risk_fen {big}, risk_cur TEXT)",
        "CREATE INDEX IF NOT EXISTS rpt_outcome_case ON rpt_outcome (case_id, seq)",
        "CREATE INDEX IF NOT EXISTS rpt_verdict_case ON rpt_verdict (case_id, seq)",
        "CREATE INDEX IF NOT EXISTS rpt_entry_case ON rpt_entry (case_id, entry, seq)",
        "CREATE INDEX IF NOT EXISTS rpt_entry_source ON rpt_entry (source_case_id)",
        "CREATE INDEX IF NOT EXISTS rpt_screening_seq ON rpt_screening (seq)",
        # Covering indexes in the order of the usual groupings, so GROUP BY streams over them
        # (the total; periods; period x branch; branch x rule's requests hit by no rule).
        f"CREATE INDEX IF NOT EXISTS rpt_screening_cells ON rpt_screening ({CELLS}, amount_fen)",
        f"CREATE INDEX IF NOT EXISTS rpt_screening_day ON rpt_screening (day, {CELLS}, amount_fen)",
        "CREATE INDEX IF NOT EXISTS rpt_screening_day_branch ON rpt_screening"
        f" (day, branch, {CELLS}, amount_fen)",
        "CREATE INDEX IF NOT EXISTS rpt_screening_unruled ON rpt_screening"
        f" (rules, branch, {CELLS}, amount_fen)",
    ]


_DECISION_PATHS = (
    "event.timestamp",
    "event.branch_id",
    "teller_id",
    "event.kind",
    "event.channel",
    "action",
    "event.amount_fen",
    "event.amount.currency",
    "failures",
    "hits",
)
_STEP_PATHS = ("outcome", "confirmed_fraud")
_ENTRY_PATHS = (
    "entry",
    "at",
    "case_type",
    "branch_id",
    "typology",
    "source_case_id",
    "verdict",
    "resolution",
    "amount_prevented.value",
    "amount_prevented.currency",
    "amount_returned.value",
    "amount_returned.currency",
    "reported_to_police",
    "amount_at_risk.value",
    "amount_at_risk.currency",
)


def refresh_statements(d: Dialect) -> list[str]:
    """Statements that index records with ``lo < seq <= hi``: each takes ``(lo, hi)`` once
    per pair of placeholders it holds."""
    p = d.param
    rng = f"r.seq > {p} AND r.seq <= {p}"
    dj = d.json_paths("r.payload", _DECISION_PATHS)
    i = d.item
    # Each new decision's JSON is parsed once, into a staging table.
    failures = i("j", 8, "failures")
    stage = (
        "INSERT INTO rpt_new_decision (seq, case_id, epoch, branch, teller, kind, channel,"
        " amount_fen, currency, action, failed, hits) "
        f"SELECT r.seq, r.case_id, {d.epoch(i('j', 0, 'event.timestamp'))},"
        f" {i('j', 1, 'event.branch_id')}, {i('j', 2, 'teller_id')},"
        f" {i('j', 3, 'event.kind')}, {i('j', 4, 'event.channel')},"
        f" {i('j', 6, 'event.amount_fen', as_int=True)}, {i('j', 7, 'event.amount.currency')},"
        f" {_rank_sql(i('j', 5, 'action'))},"
        f" CASE WHEN {failures} IN ('[]', '') OR {failures} IS NULL THEN 0 ELSE 1 END,"
        f" {i('j', 9, 'hits')}"
        f" FROM (SELECT r.seq, r.case_id, {dj} AS j FROM {d.records} r"
        f" WHERE {rng} AND r.kind = 'decision'{d.fence}) r"
    )
    # The first decision of a request sets its time, branch and amount; later ones (answers,
    # re-screening) can only raise its action.
    upsert = (
        "INSERT INTO rpt_screening (case_id, seq, epoch, day, branch, teller, kind, channel,"
        " amount_fen, currency, action, failed, decisions, rules) "
        f"SELECT n.case_id, n.seq, n.epoch, (n.epoch + {INDEX_OFFSET_S}) / 86400, n.branch,"
        " n.teller, n.kind, n.channel, n.amount_fen,"
        " n.currency, g.action, g.failed, g.decisions, 0 FROM rpt_new_decision n"
        " JOIN (SELECT case_id, MIN(seq) AS seq, MAX(action) AS action, MAX(failed) AS failed,"
        " COUNT(*) AS decisions FROM rpt_new_decision GROUP BY case_id) g"
        " ON g.seq = n.seq WHERE 1 = 1 "  # SQLite needs a WHERE before an upsert's ON
        "ON CONFLICT (case_id) DO UPDATE SET"
        f" action = {d.greatest('rpt_screening.action', 'excluded.action')},"
        f" failed = {d.greatest('rpt_screening.failed', 'excluded.failed')},"
        " decisions = rpt_screening.decisions + excluded.decisions"
    )
    rules = (
        "INSERT INTO rpt_case_rule (case_id, rule_id) "
        f"SELECT DISTINCT n.case_id, {d.hit_rule()} FROM rpt_new_decision n,"
        f" {d.hits('n.hits')} WHERE n.hits <> '[]' "
        "ON CONFLICT DO NOTHING"
    )
    sj = d.json_paths("r.payload", _STEP_PATHS)
    outcomes = (
        "INSERT INTO rpt_outcome (seq, case_id, outcome) "
        f"SELECT s.seq, s.case_id, {i('s.j', 0, 'outcome')} FROM"
        f" (SELECT r.seq, r.case_id, {sj} AS j FROM {d.records} r"
        f" WHERE {rng} AND r.kind = 'session_step'{d.fence}) s"
        f" WHERE {i('s.j', 0, 'outcome')} IS NOT NULL"
    )
    fraud = i("s.j", 1, "confirmed_fraud")
    step_verdicts = (
        "INSERT INTO rpt_verdict (seq, case_id, fraud) "
        f"SELECT s.seq, s.case_id, CASE WHEN CAST({fraud} AS TEXT) IN ('true', '1') THEN 1 ELSE 0"
        " END FROM"
        f" (SELECT r.seq, r.case_id, {sj} AS j FROM {d.records} r"
        f" WHERE {rng} AND r.kind = 'session_step'{d.fence}) s"
        f" WHERE {fraud} IS NOT NULL"
    )
    ej = d.json_paths("r.payload", _ENTRY_PATHS)

    def money(k: int, path: str) -> str:
        return d.fen(i("e.j", k, path))

    police = i("e.j", 12, "reported_to_police")
    entries = (
        "INSERT INTO rpt_entry (seq, case_id, entry, epoch, case_type, branch, typology,"
        " source_case_id, verdict, resolution, prevented_fen, prevented_cur, returned_fen,"
        " returned_cur, police, risk_fen, risk_cur) "
        f"SELECT e.seq, e.case_id, {i('e.j', 0, 'entry')}, {d.epoch(i('e.j', 1, 'at'))},"
        f" {i('e.j', 2, 'case_type')}, {i('e.j', 3, 'branch_id')}, {i('e.j', 4, 'typology')},"
        f" {i('e.j', 5, 'source_case_id')}, {i('e.j', 6, 'verdict')},"
        f" {i('e.j', 7, 'resolution')},"
        f" {money(8, 'amount_prevented.value')}, {i('e.j', 9, 'amount_prevented.currency')},"
        f" {money(10, 'amount_returned.value')}, {i('e.j', 11, 'amount_returned.currency')},"
        # SQLite yields JSON true as the integer 1, PostgreSQL as the text 'true'
        f" CASE WHEN {police} IS NULL THEN NULL WHEN CAST({police} AS TEXT) IN ('true', '1')"
        " THEN 1 ELSE 0 END,"
        f" {money(13, 'amount_at_risk.value')}, {i('e.j', 14, 'amount_at_risk.currency')} FROM"
        f" (SELECT r.seq, r.case_id, {ej} AS j FROM {d.records} r"
        f" WHERE {rng} AND r.kind = 'case_entry'{d.fence}) e"
    )
    # A ledger verdict applies to the screening the case came from (a friction complaint's
    # "not fraud" clears the customer it was about), else to the case itself.
    ledger_verdicts = (
        "INSERT INTO rpt_verdict (seq, case_id, fraud) "
        "SELECT e.seq, COALESCE(o.source_case_id, e.case_id),"
        " CASE e.verdict WHEN 'fraud_confirmed' THEN 1 WHEN 'not_fraud' THEN 0 END"
        " FROM rpt_entry e LEFT JOIN rpt_entry o ON o.case_id = e.case_id"
        f" AND o.entry = 'opened' WHERE e.entry = 'verdict' AND e.seq > {p} AND e.seq <= {p}"
    )
    # Each request carries its latest outcome and verdict, its case's typology and how many
    # rules hit it, refreshed for the requests that new records touch, so reports never look
    # them up row by row.
    touched = (
        "rpt_screening.case_id IN (SELECT case_id FROM rpt_new_decision UNION "
        f"SELECT case_id FROM rpt_outcome WHERE seq > {p} AND seq <= {p} UNION "
        f"SELECT case_id FROM rpt_verdict WHERE seq > {p} AND seq <= {p} UNION "
        f"SELECT source_case_id FROM rpt_entry WHERE seq > {p} AND seq <= {p}"
        " AND entry = 'opened' AND source_case_id IS NOT NULL)"
    )
    latest = (
        "UPDATE rpt_screening SET"
        " outcome = (SELECT x.outcome FROM rpt_outcome x WHERE x.case_id = rpt_screening.case_id"
        " ORDER BY x.seq DESC LIMIT 1),"
        " fraud = (SELECT x.fraud FROM rpt_verdict x WHERE x.case_id = rpt_screening.case_id"
        " ORDER BY x.seq DESC LIMIT 1),"
        " typology = (SELECT x.typology FROM rpt_entry x"
        " WHERE x.source_case_id = rpt_screening.case_id AND x.entry = 'opened'"
        " AND x.typology IS NOT NULL ORDER BY x.seq LIMIT 1),"
        " rules = (SELECT COUNT(*) FROM rpt_case_rule x WHERE x.case_id = rpt_screening.case_id)"
        f" WHERE {touched}"
    )
    clear = "DELETE FROM rpt_new_decision"
    return [
        clear,
        stage,
        upsert,
        rules,
        outcomes,
        step_verdicts,
        entries,
        ledger_verdicts,
        latest,
        clear,
    ]


class ReportIndex:
    """The report index in the database of one audit log: a ``sqlite3`` connection in
    autocommit mode (SQLite) or a ``psycopg`` connection (PostgreSQL)."""

    def __init__(self, conn: Any, dialect: Dialect = SQLITE) -> None:
        self.conn = conn
        self.dialect = dialect

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.dialect is SQLITE:
            return self.conn.execute(sql, params)
        cursor = self.conn.cursor()
        cursor.execute(sql, params)
        return cursor

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self.dialect is SQLITE:
            self.conn.execute("BEGIN IMMEDIATE")  # one indexer at a time
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            return
        with self.conn.transaction():
            self._exec("SET LOCAL statement_timeout = 0")  # a first indexing can take a while
            self._exec("SELECT pg_advisory_xact_lock(hashtext('guardrail_report_index'))")
            yield

    def ensure(self) -> None:
        """Create the index tables if missing; reset them if an older version built them."""
        statements = schema(self.dialect)
        self._exec(statements[0])  # rpt_meta: the version decides whether the rest is usable
        row = self._exec("SELECT version FROM rpt_meta WHERE id = 1").fetchone()
        if row is None or int(row[0]) != INDEX_VERSION:
            self._reset()
            return
        for statement in statements[1:]:
            self._exec(statement)

    def _reset(self) -> None:
        for table in _TABLES:
            self._exec(f"DROP TABLE IF EXISTS {table}")
        for statement in schema(self.dialect):
            self._exec(statement)
        p = self.dialect.param
        self._exec(
            f"INSERT INTO rpt_meta (id, version, indexed_seq) VALUES (1, {p}, 0)",
            (INDEX_VERSION,),
        )

    def indexed_seq(self) -> int:
        row = self._exec("SELECT indexed_seq FROM rpt_meta WHERE id = 1").fetchone()
        return 0 if row is None else int(row[0])

    def refresh(self, upto: int | None = None) -> int:
        """Index records after the last indexed seq (up to ``upto``); returns how many seqs
        were covered. One transaction: a crash leaves the index as it was."""
        d = self.dialect
        with self._transaction():
            self.ensure()
            lo = self.indexed_seq()
            top = self._exec(f"SELECT COALESCE(MAX(seq), 0) FROM {d.records}").fetchone()[0]
            hi = int(top) if upto is None else min(int(top), upto)
            if hi > lo:
                for statement in refresh_statements(d):
                    self._exec(statement, (lo, hi) * (statement.count(d.param) // 2))
                self._exec(f"UPDATE rpt_meta SET indexed_seq = {d.param} WHERE id = 1", (hi,))
                if d is POSTGRES and hi - lo >= ANALYZE_AFTER:
                    # Fresh statistics, or the planner guesses on tables it has never seen.
                    self._exec("ANALYZE " + ", ".join(_TABLES))
        return max(0, hi - lo)

    def rebuild(self, upto: int | None = None) -> int:
        """Drop the index and index every record again (up to ``upto``)."""
        with self._transaction():
            self._reset()
        return self.refresh(upto)
