"""Read a pack folder (and the packs it extends) into layers of parsed, validated YAML.

Every problem in every file is collected: a rule that fails its schema still has its id
checked for duplicates and its condition type-checked, so one ``guardrail lint`` run shows
everything. ``guardrail.lang.overlay`` merges the layers into a ``Pack``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardrail.lang.declarations import LexiconSpec, WatchlistSpec, WindowSpec
from guardrail.lang.errors import (
    Collector,
    Diagnostic,
    Location,
    PackError,
    did_you_mean,
    sorted_diagnostics,
)
from guardrail.lang.pack import DATA_DIR, PACK_FILE, Pack
from guardrail.lang.source import Source, parse_yaml, parse_yaml_recovering
from guardrail.lang.spec import PackMeta, QuestionnaireSpec, RuleSpec
from guardrail.lang.validate import validate_spec

SECTIONS = ("rules", "windows", "watchlists", "lexicons", "questionnaire")
MAX_EXTENDS_DEPTH = 8
YAML_SUFFIXES = (".yaml", ".yml")

RulePath = tuple[str | int, ...]


@dataclass(frozen=True)
class BrokenRule:
    """A rule item that failed its schema: what can still be checked about it."""

    rule_id: str | None
    condition: str | None
    overrides: bool = False


@dataclass
class Layer:
    """One pack folder's parsed content, before merging."""

    meta: PackMeta
    root: Path
    files: list[tuple[str, bytes]]
    rules: list[tuple[RuleSpec | BrokenRule, Source, RulePath]] = field(default_factory=list)
    windows: list[tuple[WindowSpec, Location]] = field(default_factory=list)
    watchlists: list[tuple[WatchlistSpec, Location]] = field(default_factory=list)
    lexicons: list[tuple[LexiconSpec, Location]] = field(default_factory=list)
    questionnaire: tuple[QuestionnaireSpec, Source] | None = None


def load_pack(path: str | Path) -> Pack:
    """Load and check the pack at ``path``; raises ``PackError`` listing every problem."""
    from guardrail.lang.overlay import merge_layers

    root = Path(path)
    found = Collector()
    layers = load_chain(root, found, seen=[])
    if not layers:
        raise PackError(found.errors or [Diagnostic(Location(str(root), 1, 1), "no pack loaded")])
    pack = merge_layers(layers, found)  # checks rules even after other errors, to report all
    if found.errors or pack is None:
        raise PackError(sorted_diagnostics(found.errors))
    return pack


def lint_pack(path: str | Path) -> list[Diagnostic]:
    """Every error and warning for the pack at ``path`` (empty when clean), by file and line."""
    try:
        pack = load_pack(path)
    except PackError as error:
        return list(error.diagnostics)
    return sorted_diagnostics(pack.warnings)


def packs_under(root: Path) -> list[Path]:
    """Every pack folder at or below ``root``."""
    if (root / PACK_FILE).is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(
        p.parent for p in root.rglob(PACK_FILE) if DATA_DIR not in p.relative_to(root).parts
    )


def stray_yaml_files(root: Path, packs: list[Path]) -> list[Diagnostic]:
    """YAML files under ``root`` that belong to no pack: each one is reported, and a broken one
    as an error (it would otherwise be ignored in silence)."""
    if not root.is_dir():
        return []
    owners = [p.resolve() for p in packs]
    found = Collector()
    for file in sorted(root.rglob("*")):
        if not file.is_file() or file.suffix not in YAML_SUFFIXES:
            continue
        resolved = file.resolve()
        if any(resolved.is_relative_to(owner) for owner in owners):
            continue
        text = _read_text(file, found)
        if text is None:
            continue
        source, problems = parse_yaml(display_path(file), text)
        found.items.extend(problems)
        if source is not None:
            found.warn(
                Location(display_path(file), 1, 1),
                f"belongs to no pack (no {PACK_FILE} in this folder or above it up to the "
                "linted folder), so it is not checked or used",
            )
    return found.items


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_chain(root: Path, found: Collector, seen: list[Path]) -> list[Layer]:
    """The layers of the pack at ``root``, base first."""
    meta_path = root / PACK_FILE
    if not root.is_dir():
        found.error(Location(display_path(root), 1, 1), "pack folder not found")
        return []
    if not meta_path.is_file():
        found.error(Location(display_path(meta_path), 1, 1), f"a pack folder needs a {PACK_FILE}")
        return []
    resolved = root.resolve()
    if resolved in seen:
        found.error(Location(display_path(meta_path), 1, 1), "'extends' forms a cycle")
        return []
    if len(seen) >= MAX_EXTENDS_DEPTH:
        found.error(
            Location(display_path(meta_path), 1, 1),
            f"more than {MAX_EXTENDS_DEPTH} levels of 'extends'",
        )
        return []
    meta_source = _read(meta_path, found)
    if meta_source is None:
        return []
    data = meta_source.data
    if not isinstance(data, dict) or "pack" not in data:
        found.error(meta_source.location(()), f"{PACK_FILE} must have a top-level 'pack:' mapping")
        return []
    for key in sorted(set(data) - {"pack"}):
        found.error(
            meta_source.location((key, "__key__")), f"unknown top-level key {key!r} in {PACK_FILE}"
        )
    meta = validate_spec(PackMeta, data["pack"], meta_source, ("pack",), found)
    if meta is None:
        return []
    base: list[Layer] = []
    if meta.extends:
        base = load_chain((root / meta.extends), found, [*seen, resolved])
        if not base:
            found.error(
                meta_source.location(("pack", "extends")), f"cannot load base pack {meta.extends!r}"
            )
            return []
    layer = Layer(meta=meta, root=root, files=[(PACK_FILE, meta_path.read_bytes())])
    for file in rule_files(root):
        layer.files.append((file.relative_to(root).as_posix(), file.read_bytes()))
        for source in _read_recovering(file, found):
            _collect_sections(layer, source, found)
    return [*base, layer]


def rule_files(root: Path) -> list[Path]:
    """The YAML files of one pack folder, without ``pack.yaml``, its data folder and the
    folders of nested packs."""
    nested = {p.parent for p in root.rglob(PACK_FILE) if p.parent != root}
    return [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and p.suffix in YAML_SUFFIXES
        and p.name != PACK_FILE
        and DATA_DIR not in p.relative_to(root).parts[:-1]
        and not any(p.is_relative_to(folder) for folder in nested)
    ]


def _read_text(path: Path, found: Collector) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        found.error(Location(display_path(path), 1, 1), f"not UTF-8 text: {error.reason}")
    except OSError as error:
        found.error(Location(display_path(path), 1, 1), f"cannot read file: {error.strerror}")
    return None


def _read(path: Path, found: Collector) -> Source | None:
    text = _read_text(path, found)
    if text is None:
        return None
    source, problems = parse_yaml(display_path(path), text)
    found.items.extend(problems)
    return source


def _read_recovering(path: Path, found: Collector) -> list[Source]:
    text = _read_text(path, found)
    if text is None:
        return []
    sources, problems = parse_yaml_recovering(display_path(path), text)
    found.items.extend(problems)
    return sources


def _collect_sections(layer: Layer, source: Source, found: Collector) -> None:
    data = source.data
    if data is None:
        found.warn(source.location(()), "empty file")
        return
    if not isinstance(data, dict):
        found.error(
            source.location(()),
            f"top level must be a mapping with keys among: {', '.join(SECTIONS)}",
        )
        return
    for key, value in data.items():
        if key not in SECTIONS:
            found.error(
                source.location((key, "__key__")),
                f"unknown section {key!r}"
                + did_you_mean(key, SECTIONS)
                + f" (allowed: {', '.join(SECTIONS)})",
            )
            continue
        if key == "questionnaire":
            spec = validate_spec(QuestionnaireSpec, value, source, (key,), found)
            if spec is not None:
                if layer.questionnaire is not None:
                    found.error(
                        source.location((key, "__key__")), "a pack has at most one questionnaire"
                    )
                layer.questionnaire = (spec, source)
            continue
        if not isinstance(value, list):
            found.error(source.location((key,)), f"'{key}' must be a list")
            continue
        for index, item in enumerate(value):
            _collect_item(layer, key, item, source, (key, index), found)


def _collect_item(
    layer: Layer, section: str, item: Any, source: Source, path: RulePath, found: Collector
) -> None:
    if section == "rules":
        rule = validate_spec(RuleSpec, item, source, path, found)
        if rule is not None:
            layer.rules.append((rule, source, path))
        elif isinstance(item, dict):
            rule_id, condition = item.get("id"), item.get("condition")
            broken = BrokenRule(
                rule_id if isinstance(rule_id, str) else None,
                condition if isinstance(condition, str) and condition.strip() else None,
                item.get("overrides") is True,
            )
            layer.rules.append((broken, source, path))
    elif section == "windows":
        window = validate_spec(WindowSpec, item, source, path, found)
        if window is not None:
            layer.windows.append((window, source.location(path)))
    elif section == "watchlists":
        watchlist = validate_spec(WatchlistSpec, item, source, path, found)
        if watchlist is not None:
            layer.watchlists.append((watchlist, source.location(path)))
    else:
        lexicon = validate_spec(LexiconSpec, item, source, path, found)
        if lexicon is not None:
            layer.lexicons.append((lexicon, source.location(path)))
