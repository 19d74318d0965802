"""Reading a watchlist file (CSV or YAML) into its version, label and values, with ``file:line``
errors.

Here, below the context layer, so that linting a pack can check its watchlist files too.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

import yaml

from guardrail.errors import GuardrailError
from guardrail.lang.identity import content_version

_VERSION_LINE = re.compile(r"^#\s*version\s*:\s*(\S.*?)\s*$", re.IGNORECASE)
_SEPARATORS = str.maketrans("", "", " -\t")


class WatchlistError(GuardrailError, ValueError):
    """A watchlist file that cannot be used; the message starts with ``file:line:``."""


def normalise_value(value: str) -> str:
    """Canonical form of a listed value: NFKC, no spaces or dashes, case-folded.

    ``6222-0212 3456`` and ``622202123456`` are the same account; full-width digits typed by an
    input method count as digits.
    """
    if value.isascii() and value.isalnum():  # most values: already canonical but for case
        return value.lower()
    return unicodedata.normalize("NFKC", value).strip().translate(_SEPARATORS).casefold()


def read_watchlist_file(path: Path) -> tuple[str, str, list[str]]:
    """The version, label and raw values of the watchlist file at ``path``; ``WatchlistError``
    when it cannot be read or is malformed.

    CSV: an optional first line ``# version: X``, then a header with a ``value`` column and an
    optional ``note`` column. YAML: ``version: X`` and ``entries:`` as a list of values or of
    ``{value:, note:}`` mappings. The version is always the first 12 hex digits of the file's
    sha256 (as in the pack's content hash); a written ``version`` is returned only as the
    label, so a decision never names a version that is not the data it used.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WatchlistError(f"{path}:0: cannot read watchlist: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise WatchlistError(f"{path}:{line}: not UTF-8 text") from exc
    digest = content_version(raw)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        version, values = _parse_csv(path, text)
    elif suffix in (".yaml", ".yml"):
        version, values = _parse_yaml(path, text)
    else:
        raise WatchlistError(
            f"{path}:0: unsupported watchlist format {suffix!r}; use .csv or .yaml"
        )
    return digest, version or "", values


def _parse_csv(path: Path, text: str) -> tuple[str | None, list[str]]:
    lines = text.splitlines()
    version: str | None = None
    first = 0
    if lines:
        match = _VERSION_LINE.match(lines[0])
        if match:
            version, first = match.group(1), 1
        elif lines[0].lstrip().startswith("#") and "version" in lines[0].lower():
            raise WatchlistError(f"{path}:1: malformed version line, expected '# version: X'")
    # Skip blank and comment lines but remember each remaining row's line number.
    numbered = [
        (number, line)
        for number, line in enumerate(lines[first:], start=first + 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise WatchlistError(f"{path}:{len(lines) or 1}: no header row; expected a 'value' column")
    try:
        rows = list(csv.reader(io.StringIO("\n".join(line for _, line in numbered)), strict=True))
    except csv.Error as exc:
        raise WatchlistError(f"{path}:0: malformed CSV: {exc}") from exc
    if len(rows) != len(numbered):
        raise WatchlistError(f"{path}:0: quoted fields spanning lines are not supported")
    header_line, header = numbered[0][0], [cell.strip().lower() for cell in rows[0]]
    unknown = [cell for cell in header if cell not in ("value", "note")]
    if "value" not in header:
        raise WatchlistError(f"{path}:{header_line}: header has no 'value' column: {rows[0]}")
    if unknown or len(set(header)) != len(header):
        raise WatchlistError(
            f"{path}:{header_line}: header columns must be 'value' and optionally 'note', "
            f"got {rows[0]}"
        )
    index = header.index("value")
    values: list[str] = []
    for (number, _), row in zip(numbered[1:], rows[1:], strict=True):
        if len(row) != len(header):
            raise WatchlistError(
                f"{path}:{number}: expected {len(header)} fields, got {len(row)}: {row}"
            )
        value = row[index]
        if not normalise_value(value):
            raise WatchlistError(f"{path}:{number}: empty value")
        values.append(value)
    return version, values


def _parse_yaml(path: Path, text: str) -> tuple[str | None, list[str]]:
    # Work on the node tree rather than loaded objects: every node knows its line, and scalars
    # stay as written (a phone number keeps its leading zero, a version 1.10 is not 1.1).
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise WatchlistError(f"{path}:{line}: malformed YAML: {problem}") from exc
    if not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1 if root is not None else 1
        raise WatchlistError(f"{path}:{line}: expected a mapping with 'version' and 'entries'")
    version: str | None = None
    entries: yaml.SequenceNode | None = None
    for key_node, value_node in root.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        line = key_node.start_mark.line + 1
        if key == "version":
            if not isinstance(value_node, yaml.ScalarNode) or not str(value_node.value).strip():
                raise WatchlistError(f"{path}:{line}: 'version' must be a non-empty scalar")
            version = str(value_node.value).strip()
        elif key == "entries":
            if not isinstance(value_node, yaml.SequenceNode):
                raise WatchlistError(f"{path}:{line}: 'entries' must be a list")
            entries = value_node
        elif key not in ("name", "description"):
            raise WatchlistError(
                f"{path}:{line}: unknown key {key!r}; expected 'version' and 'entries'"
            )
    if entries is None:
        raise WatchlistError(f"{path}:{root.start_mark.line + 1}: missing 'entries'")
    return version, [_yaml_entry(path, node) for node in entries.value]


def _yaml_entry(path: Path, node: yaml.Node) -> str:
    line = node.start_mark.line + 1
    value_node: yaml.Node | None = node
    if isinstance(node, yaml.MappingNode):
        value_node = None
        for key_node, item in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key == "value":
                value_node = item
            elif key != "note":
                raise WatchlistError(
                    f"{path}:{key_node.start_mark.line + 1}: unknown entry key {key!r}; "
                    "expected 'value' and optionally 'note'"
                )
        if value_node is None:
            raise WatchlistError(f"{path}:{line}: entry has no 'value'")
    if not isinstance(value_node, yaml.ScalarNode):
        raise WatchlistError(f"{path}:{line}: entry value must be a scalar")
    value = str(value_node.value)
    if value_node.tag == "tag:yaml.org,2002:null" or not normalise_value(value):
        raise WatchlistError(f"{path}:{line}: empty value")
    return value
