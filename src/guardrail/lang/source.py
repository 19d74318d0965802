"""YAML documents that remember where every value came from.

PyYAML's composer gives nodes with marks; we turn them into plain Python values and a map from
the value's path (``("rules", 3, "condition")``) to its location, so that any later error (a
pydantic validation error, a type error in a condition) can be reported as ``file:line:col``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from guardrail.lang.errors import Diagnostic, Location

Path = tuple[str | int, ...]

MAX_FILE_BYTES = 4 * 1024 * 1024  # a rule file larger than this is refused, not parsed
# Anchors and aliases are allowed, but a value reached again through an alias counts against a
# budget, so that a few hundred bytes cannot expand into gigabytes ("billion laughs").
MAX_ALIASED_VALUES = 10_000
MAX_DEPTH = 64  # nesting deeper than any pack needs; recursive aliases are refused outright


@dataclass
class Source:
    """One parsed YAML file: its data and the location of every value in it."""

    file: str
    text: str
    data: Any
    locations: dict[Path, Location] = field(default_factory=dict)
    styles: dict[Path, str | None] = field(default_factory=dict)

    def location(self, path: Path) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            found = self.locations.get(probe)
            if found is not None:
                return found
            probe = probe[:-1]
        return self.locations.get((), Location(self.file, 1, 1))

    def text_location(self, path: Path, offset: int) -> Location:
        """Location of character ``offset`` inside the string scalar at ``path``."""
        start = self.location(path)
        style = self.styles.get(tuple(path))
        value = _lookup(self.data, path)
        if not isinstance(value, str):
            return start
        before = value[:offset]
        if style in ("|", ">"):
            # Block scalar: the text begins on the next line, at the block's indentation.
            lines = self.text.splitlines()
            first_line_index = start.line  # 0-based index of the line after the indicator
            indent = 0
            if first_line_index < len(lines):
                body = lines[first_line_index]
                indent = len(body) - len(body.lstrip(" "))
            line = start.line + 1 + before.count("\n")
            col = indent + 1 + len(before.rsplit("\n", 1)[-1])
            return Location(self.file, line, col)
        quote = 1 if style in ("'", '"') else 0
        if "\n" in before:
            return Location(self.file, start.line + before.count("\n"), 1)
        return Location(self.file, start.line, start.col + quote + len(before))


def _lookup(data: Any, path: Path) -> Any:
    current = data
    for key in path:
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError):
            return None
    return current


class _Refused(Exception):
    """A value the parser will not build (recursive or over-expanded alias, too deep)."""

    def __init__(self, problem: str, node: yaml.Node) -> None:
        self.problem = problem
        self.node = node


@dataclass
class _Walk:
    """State of one conversion: which nodes were built, which are open, how much was aliased."""

    loader: yaml.SafeLoader
    built: set[int] = field(default_factory=set)
    open: set[int] = field(default_factory=set)
    aliased: int = 0


class _DuplicateKey(Exception):
    def __init__(self, key: str, location: Location, first: Location) -> None:
        self.key = key
        self.location = location
        self.first = first


def parse_yaml(file: str, text: str) -> tuple[Source | None, list[Diagnostic]]:
    """Parse one YAML document; bad YAML and duplicate keys come back as diagnostics."""
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        return None, [Diagnostic(Location(file, 1, 1), f"file larger than {MAX_FILE_BYTES} bytes")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = error.problem or error.context or "invalid YAML"
        context = error.context_mark
        if error.context and error.problem and context is not None and context is not mark:
            where = f"line {context.line + 1}, column {context.column + 1}"
            problem += f" ({error.context} started at {where})"
        return None, [Diagnostic(Location(file, line, col), f"YAML error: {problem}")]
    except yaml.YAMLError as error:
        return None, [Diagnostic(Location(file, 1, 1), f"YAML error: {error}")]
    except RecursionError:
        return None, [Diagnostic(Location(file, 1, 1), "YAML error: nesting too deep")]
    source = Source(file=file, text=text, data=None)
    if node is None:
        source.data = None
        return source, []
    try:
        source.data = _convert(node, (), source, _Walk(yaml.SafeLoader("")))
    except _Refused as refused:
        mark = refused.node.start_mark
        return None, [
            Diagnostic(
                Location(file, mark.line + 1, mark.column + 1), f"YAML error: {refused.problem}"
            )
        ]
    except _DuplicateKey as dup:
        return None, [
            Diagnostic(
                dup.location, f"duplicate key {dup.key!r} (first defined at line {dup.first.line})"
            )
        ]
    except (ValueError, yaml.constructor.ConstructorError) as error:
        return None, [
            Diagnostic(Location(file, node.start_mark.line + 1, 1), f"YAML error: {error}")
        ]
    return source, []


def _convert(node: yaml.Node, path: Path, source: Source, walk: _Walk) -> Any:
    identity = id(node)
    if identity in walk.open:
        raise _Refused("recursive alias (a value that contains itself)", node)
    if len(path) > MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels", node)
    if identity in walk.built:  # reached again through an alias
        walk.aliased += 1
        if walk.aliased > MAX_ALIASED_VALUES:
            raise _Refused(f"aliases expand to more than {MAX_ALIASED_VALUES} values", node)
    walk.built.add(identity)
    walk.open.add(identity)
    try:
        return _build(node, path, source, walk)
    finally:
        walk.open.discard(identity)


def _build(node: yaml.Node, path: Path, source: Source, walk: _Walk) -> Any:
    loader = walk.loader
    source.locations[path] = Location(
        source.file, node.start_mark.line + 1, node.start_mark.column + 1
    )
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            key_text = str(key)
            key_loc = Location(
                source.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1
            )
            if key_text in seen:
                raise _DuplicateKey(key_text, key_loc, seen[key_text])
            seen[key_text] = key_loc
            result[key_text] = _convert(value_node, (*path, key_text), source, walk)
            # Errors about a key (unknown field) point at the key, not at its value.
            source.locations.setdefault((*path, key_text, "__key__"), key_loc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, index), source, walk) for index, item in enumerate(node.value)
        ]
    assert isinstance(node, yaml.ScalarNode)
    source.styles[path] = node.style
    return loader.construct_object(node)


_SECTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):\s*(#.*)?$")
_ITEM = re.compile(r"^(\s*)- ")


def parse_yaml_recovering(file: str, text: str) -> tuple[list[Source], list[Diagnostic]]:
    """Parse a file; if it is not valid YAML, parse each top-level section item on its own,
    so one broken rule does not hide the errors in the others.

    Every recovered piece keeps its original line and column numbers: it is padded with
    blank lines and its section header is placed on the line just above it.
    """
    source, problems = parse_yaml(file, text)
    if source is not None or not problems or not problems[0].message.startswith("YAML error"):
        return ([source] if source is not None else []), problems
    lines = text.splitlines(keepends=True)
    pieces: list[tuple[str, int, int]] = []  # section, first line index, end line index
    section: str | None = None
    item_indent: str | None = None
    for index, line in enumerate(lines):
        header = _SECTION.match(line)
        if header:
            section, item_indent = header.group(1), None
            pieces.append((section, index + 1, index + 1))
            continue
        item = _ITEM.match(line)
        if section is not None and item and (item_indent is None or item.group(1) == item_indent):
            item_indent = item.group(1)
            pieces.append((section, index, index + 1))
        elif pieces:
            name, start, _ = pieces[-1]
            pieces[-1] = (name, start, index + 1)
    sources: list[Source] = []
    diagnostics: list[Diagnostic] = []
    for name, start, end in pieces:
        body = "".join(lines[start:end])
        if not body.strip():
            continue
        padded = "\n" * max(start - 1, 0) + f"{name}:\n" + body
        piece, piece_problems = parse_yaml(file, padded)
        diagnostics.extend(piece_problems)
        if piece is not None:
            sources.append(piece)
    if not diagnostics:  # recovery could not place the error: report the original one
        diagnostics = problems
    return sources, diagnostics
