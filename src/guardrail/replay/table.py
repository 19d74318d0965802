"""A labelled stream as one flat table: the columns the columnar and Spark engines read, the
Parquet file format of ``guardrail simulate --format parquet``, and checks that a Parquet file
holds exactly the events the JSONL validator would accept.

Columns are the JSON paths of the event joined by dots (``customer.id``, ``account.opened_on``);
money is two columns, ``amount.fen`` (integer minor units) and ``amount.currency``; an optional
object (``account``, ``counterparty``, ``purpose``, ...) has a boolean presence column under its
own name. The line's own fields (``guardrail.model.stream``, the one line format) are
``label``, ``typology``, ``scenario`` and ``executed_history_hint``. The column list is derived
from the ``Event`` model, so a field added to the model is a column here without a second
hand-kept list.
"""

from __future__ import annotations

import datetime as dt
import json
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

from guardrail.errors import GuardrailError
from guardrail.model.event import Event
from guardrail.model.money import MAX_AMOUNT, Money, from_fen, to_fen
from guardrail.model.stream import HINTS, LABELS, LINE_FIELDS, StreamLine
from guardrail.sim.replay import ReplayRecord

LeafKind = Literal["str", "bool", "int", "date", "datetime", "fen", "currency", "presence", "json"]
LINE_COLUMNS = LINE_FIELDS
MAX_FEN = to_fen(MAX_AMOUNT)
ROW_GROUP = 100_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class StreamError(GuardrailError, ValueError):
    """A stream file that cannot be replayed; the message names the file, row and column."""


@dataclass(frozen=True, slots=True)
class Leaf:
    """One column of the event part of the table."""

    column: str
    path: tuple[str, ...]  # attribute path in the Event (for money: the Money field)
    kind: LeafKind
    annotation: Any  # the model's annotated type, for validating values read from Parquet
    optional: bool  # may be null while its parent object is present
    parent: str | None  # presence column of the optional object holding it


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _base_type(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _scalar_kind(base: Any) -> LeafKind:
    if base is bool:
        return "bool"
    if base is int:
        return "int"
    if base is dt.datetime:
        return "datetime"
    if base is dt.date:
        return "date"
    if isinstance(base, type) and issubclass(base, str | Enum):
        return "str"
    raise TypeError(f"no column type for {base!r}")


def _leaves(model: type[BaseModel], prefix: tuple[str, ...], parent: str | None) -> list[Leaf]:
    leaves: list[Leaf] = []
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        column = ".".join(path)
        annotation, optional = _unwrap_optional(info.annotation)
        base = _base_type(annotation)
        if typing.get_origin(base) in (tuple, list):
            # a list of objects: one JSON text column, validated by the model on the way in
            full = Annotated[annotation, *info.metadata] if info.metadata else annotation
            leaves.append(Leaf(column, path, "json", full, False, parent))
        elif isinstance(base, type) and issubclass(base, Money):
            leaves.append(Leaf(f"{column}.fen", path, "fen", int, optional, parent))
            leaves.append(Leaf(f"{column}.currency", path, "currency", str, optional, parent))
        elif isinstance(base, type) and issubclass(base, BaseModel):
            inner_parent = parent
            if optional:
                leaves.append(Leaf(column, path, "presence", bool, False, parent))
                inner_parent = column
            leaves.extend(_leaves(base, path, inner_parent))
        else:
            full = Annotated[annotation, *info.metadata] if info.metadata else annotation
            leaves.append(Leaf(column, path, _scalar_kind(base), full, optional, parent))
    return leaves


LEAVES: tuple[Leaf, ...] = tuple(_leaves(Event, (), None))
EVENT_COLUMNS = tuple(leaf.column for leaf in LEAVES)
COLUMNS = (*LINE_COLUMNS, *EVENT_COLUMNS)

_ARROW: dict[LeafKind, pa.DataType] = {
    "str": pa.string(),
    "bool": pa.bool_(),
    "int": pa.int64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "fen": pa.int64(),
    "currency": pa.string(),
    "presence": pa.bool_(),
    "json": pa.string(),
}
_POLARS: dict[LeafKind, pl.DataType] = {
    "str": pl.String(),
    "bool": pl.Boolean(),
    "int": pl.Int64(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
    "fen": pl.Int64(),
    "currency": pl.String(),
    "presence": pl.Boolean(),
    "json": pl.String(),
}
ARROW_SCHEMA = pa.schema(
    [pa.field(name, pa.string()) for name in LINE_COLUMNS]
    + [pa.field(leaf.column, _ARROW[leaf.kind]) for leaf in LEAVES]
)
POLARS_SCHEMA: dict[str, pl.DataType] = {
    **{name: pl.String() for name in LINE_COLUMNS},
    **{leaf.column: _POLARS[leaf.kind] for leaf in LEAVES},
}


# -- events to columns -----------------------------------------------------------------------


def _leaf_value(event: Event, leaf: Leaf) -> Any:
    value: Any = event
    for name in leaf.path:
        value = getattr(value, name)
        if value is None:
            return False if leaf.kind == "presence" else None
    if leaf.kind == "presence":
        return True
    if leaf.kind == "fen":
        return value.fen
    if leaf.kind == "currency":
        return value.currency.value
    if leaf.kind == "json":
        return json.dumps(
            [item.model_dump(mode="json") for item in value], ensure_ascii=False, sort_keys=True
        )
    if isinstance(value, Enum):
        return value.value
    return value


def frame_from_lines(lines: Iterable[StreamLine]) -> pl.DataFrame:
    """The table of already validated lines (JSONL read through the live validator)."""
    data: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    line_columns = [data[name] for name in LINE_COLUMNS]
    leaf_columns = [(data[leaf.column], leaf) for leaf in LEAVES]
    for line in lines:
        for column, value in zip(
            line_columns,
            (line.label, line.typology, line.scenario, line.executed_history_hint),
            strict=True,
        ):
            column.append(value)
        event = line.event
        for column, leaf in leaf_columns:
            column.append(_leaf_value(event, leaf))
    return pl.DataFrame(data, schema=POLARS_SCHEMA)


def write_parquet(lines: Iterable[StreamLine], path: str | Path) -> int:
    """Write a labelled stream as Parquet (row groups of 100,000); returns the row count."""
    count = 0
    batch: list[StreamLine] = []
    with pq.ParquetWriter(str(path), ARROW_SCHEMA, compression="zstd") as writer:
        for line in lines:
            batch.append(line)
            if len(batch) >= ROW_GROUP:
                writer.write_table(frame_from_lines(batch).to_arrow().cast(ARROW_SCHEMA))
                count += len(batch)
                batch = []
        if batch or count == 0:
            writer.write_table(frame_from_lines(batch).to_arrow().cast(ARROW_SCHEMA))
            count += len(batch)
    return count


# -- Parquet to columns, checked -------------------------------------------------------------


def read_parquet(path: str | Path) -> pl.DataFrame:
    """Read and check a stream file; ``StreamError`` names the first problem (row, column)."""
    source = str(path)
    try:
        frame = pl.read_parquet(source)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise StreamError(f"{source}: cannot read Parquet: {error}") from None
    return check_frame(frame, source)


def check_frame(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """``frame`` with exactly the stream columns and types, every value valid for the event
    model; raises ``StreamError`` naming the file, the row (1-based) and the column."""
    unknown = [name for name in frame.columns if name not in POLARS_SCHEMA]
    if unknown:
        raise StreamError(f"{source}: unknown column {unknown[0]!r}")
    missing = [name for name in COLUMNS if name not in frame.columns]
    if missing:
        raise StreamError(f"{source}: missing column {missing[0]!r}")
    casts = []
    for name in COLUMNS:
        expected = POLARS_SCHEMA[name]
        actual = frame.schema[name]
        if actual == expected:
            continue
        if isinstance(expected, pl.Datetime) and isinstance(actual, pl.Datetime):
            if actual.time_zone is None:
                raise StreamError(
                    f"{source}: column {name!r}: timestamps must carry a time zone (UTC)"
                )
            casts.append(pl.col(name).dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
        elif expected == pl.Int64() and actual.is_integer():
            casts.append(pl.col(name).cast(pl.Int64))
        elif expected == pl.String() and actual in (pl.Categorical(), pl.Enum):
            casts.append(pl.col(name).cast(pl.String))
        else:
            raise StreamError(f"{source}: column {name!r} has type {actual}, expected {expected}")
    if casts:
        frame = frame.with_columns(casts)
    frame = frame.select(COLUMNS)
    _check_values(frame, source)
    return frame


def _first_row(frame: pl.DataFrame, mask: pl.Expr) -> int | None:
    rows = frame.select(pl.arg_where(mask).first()).item()
    return None if rows is None else int(rows) + 1


def _check_values(frame: pl.DataFrame, source: str) -> None:
    def fail(row: int, column: str, problem: str) -> None:
        raise StreamError(f"{source}: row {row}, column {column!r}: {problem}")

    checks: list[tuple[str, pl.Expr, str]] = [
        ("label", ~pl.col("label").is_in(LABELS).fill_null(False), "expected fraud or legitimate"),
        (
            "executed_history_hint",
            ~pl.col("executed_history_hint").is_in(HINTS).fill_null(True),
            "expected if_allowed or always",
        ),
    ]
    for leaf in LEAVES:
        present = pl.lit(True) if leaf.parent is None else pl.col(leaf.parent).fill_null(False)
        value = pl.col(leaf.column)
        if leaf.parent is not None:
            checks.append(
                (
                    leaf.column,
                    ~present & value.is_not_null(),
                    f"set although {leaf.parent} is absent",
                )
            )
        if not leaf.optional:
            checks.append((leaf.column, present & value.is_null(), "missing required value"))
        if leaf.kind == "fen":
            checks.append(
                (leaf.column, (value < 0) | (value > MAX_FEN), f"must be 0..{MAX_FEN} fen")
            )
    # every check in one pass over the table (Polars runs them in parallel); the first
    # failing check in this order is reported, as one check at a time would
    firsts = frame.select(
        pl.arg_where(mask).first().alias(f"check{index}")
        for index, (_, mask, _) in enumerate(checks)
    ).row(0)
    for (column, _, problem), row in zip(checks, firsts, strict=True):
        if row is not None:
            fail(int(row) + 1, column, problem)
    distinct = [leaf for leaf in LEAVES if leaf.kind in ("str", "int", "currency", "json")]
    found = frame.select(_distinct_check(leaf) for leaf in distinct).row(0)
    for leaf, item in zip(distinct, found, strict=True):
        _check_distinct(frame, leaf, source, item)


def _distinct_check(leaf: Leaf) -> pl.Expr:
    """The first row (0-based) breaking a plain constrained string's rule, or for any other
    column its distinct values, for ``_check_distinct``."""
    rule = _string_rule(leaf.annotation) if leaf.kind == "str" else None
    value = pl.col(leaf.column)
    if rule is not None:
        return pl.arg_where(_breaks(value, rule)).first().alias(leaf.column)
    return value.drop_nulls().unique().implode().alias(leaf.column)


def _string_rule(annotation: Any) -> StringConstraints | None:
    """The constraints of a plain constrained string (``Annotated[str, StringConstraints]``
    and nothing else): Polars checks those on the whole column as the model does (the same
    Rust regex engine, lengths in characters), without a Python object per value."""
    if typing.get_origin(annotation) is not Annotated:
        return None
    base, *metadata = typing.get_args(annotation)
    if base is not str or len(metadata) != 1 or not isinstance(metadata[0], StringConstraints):
        return None
    rule = metadata[0]
    if rule.strip_whitespace or rule.to_upper or rule.to_lower or rule.strict or rule.ascii_only:
        return None
    return rule


def _breaks(value: pl.Expr, rule: StringConstraints) -> pl.Expr:
    """Whether a present value breaks ``rule``."""
    length = value.str.len_chars()
    broken = pl.lit(False)
    if rule.min_length is not None:
        broken = broken | (length < rule.min_length)
    if rule.max_length is not None:
        broken = broken | (length > rule.max_length)
    if rule.pattern is not None:
        broken = broken | ~value.str.contains(str(rule.pattern))
    return value.is_not_null() & broken


def _check_distinct(frame: pl.DataFrame, leaf: Leaf, source: str, found: Any) -> None:
    """Validate each distinct value once with the model's own constraints; ``found`` is what
    ``_distinct_check`` gave for the column."""
    from guardrail.model.money import Currency

    annotation = Currency if leaf.kind == "currency" else leaf.annotation
    if _string_rule(annotation) is not None and leaf.kind == "str":
        if found is None:
            return
        # the model names the problem, with the flagged value first
        unique = frame.get_column(leaf.column).drop_nulls().unique().to_list()
        values = [frame.get_column(leaf.column)[int(found)], *unique]
    else:
        values = list(found)
    if not values:
        return
    try:
        if leaf.kind == "json":
            adapter: TypeAdapter[Any] = TypeAdapter(annotation)
            for index, text in enumerate(values):
                try:
                    adapter.validate_json(text)
                except ValidationError:
                    values = values[index : index + 1]
                    raise
            return
        TypeAdapter(list[annotation]).validate_python(values)  # type: ignore[valid-type]
    except ValidationError as error:
        item = error.errors(include_url=False)[0]
        bad = values[0] if leaf.kind == "json" or not item["loc"] else values[int(item["loc"][0])]
        row = _first_row(frame, pl.col(leaf.column) == bad)
        raise StreamError(
            f"{source}: row {row}, column {leaf.column!r}: {item['msg']}: {str(bad)[:60]!r}"
        ) from None


# -- columns back to JSON lines (the reference engine's input) -------------------------------


def _json_value(leaf: Leaf, value: Any) -> Any:
    if leaf.kind == "datetime":
        assert isinstance(value, dt.datetime)
        return value.astimezone(dt.UTC).isoformat()
    if leaf.kind == "date":
        assert isinstance(value, dt.date)
        return value.isoformat()
    if leaf.kind == "json":
        return json.loads(value)
    return value


def _nest(row: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {}
    absent: set[str] = set()
    for leaf in LEAVES:
        if leaf.parent is not None and leaf.parent in absent:
            continue
        value = row[leaf.column]
        if leaf.kind == "presence":
            if not value:
                absent.add(leaf.column)
            continue
        if value is None:
            continue
        target = event
        for name in leaf.path[:-1]:
            target = target.setdefault(name, {})
        name = leaf.path[-1]
        if leaf.kind == "fen":
            target.setdefault(name, {})["value"] = str(from_fen(value))
        elif leaf.kind == "currency":
            target.setdefault(name, {})["currency"] = value
        else:
            target[name] = _json_value(leaf, value)
    for leaf in LEAVES:  # a present optional object without any set field is still present
        if leaf.kind == "presence" and row[leaf.column] and leaf.column not in absent:
            target = event
            for name in leaf.path:
                target = target.setdefault(name, {})
    line: dict[str, Any] = {name: row[name] for name in LINE_COLUMNS if row[name] is not None}
    line["event"] = event
    return line


def parquet_lines(path: str | Path, batch_rows: int = 50_000) -> Iterator[str]:
    """The rows of a Parquet stream as JSONL lines, for the reference replay (which validates
    each line exactly as it validates JSONL)."""
    source = str(path)
    try:
        handle = pq.ParquetFile(source)
    except (OSError, pa.ArrowException) as error:
        raise StreamError(f"{source}: cannot read Parquet: {error}") from None
    names = set(handle.schema_arrow.names)
    unknown = sorted(names - set(COLUMNS))
    if unknown:
        raise StreamError(f"{source}: unknown column {unknown[0]!r}")
    missing = [name for name in COLUMNS if name not in names]
    if missing:
        raise StreamError(f"{source}: missing column {missing[0]!r}")
    for batch in handle.iter_batches(batch_size=batch_rows, columns=list(COLUMNS)):
        for row in batch.to_pylist():
            yield json.dumps(_nest(row), ensure_ascii=False, default=str)


def count_rows(path: str | Path) -> int:
    """Rows of a Parquet file, from its footer."""
    return int(pq.ParquetFile(str(path)).metadata.num_rows)


def is_parquet(path: str | Path) -> bool:
    """Whether ``path`` names a Parquet file (by its suffix)."""
    return str(path).lower().endswith((".parquet", ".pq"))


def lines_of(records: Iterable[StreamLine | ReplayRecord]) -> Iterator[StreamLine]:
    """The stream lines of generator records or of replay records (validated lines)."""
    for record in records:
        yield record.line if isinstance(record, ReplayRecord) else record


def event_of_row(row: dict[str, Any]) -> Event:
    """The event of one table row (every column, by name), validated by the model."""
    text = json.dumps(_nest(row)["event"], ensure_ascii=False, default=str)
    return Event.model_validate_json(text)  # the strict model takes enums and tuples as JSON
