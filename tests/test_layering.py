"""Imports point down the layers written in README.md: nothing imports a layer above its own
or a package beside it. The README's layer block is the table, so the two cannot drift."""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

SRC = ROOT / "src" / "guardrail"

# Imports allowed between two packages of the same layer: (importer, imported).
SIDEWAYS_ALLOWED = {
    ("testing", "sim"),  # the strategies reuse the generator's phrase lists
}


def readme_layers() -> list[list[str]]:
    """The layer table from README.md, top layer first."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("layers, top to bottom") + 1
    layers = []
    for line in lines[start:]:
        if line.startswith("```"):
            break
        names = line.split("--")[0].replace("·", " ").split()
        assert names, f"README.md layer table: empty line {line!r}"
        layers.append(names)
    return layers


def unit_of_file(path: Path) -> str:
    """The layer unit of a source file: its top-level package or module under guardrail."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def unit_of_module(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "guardrail":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(tree: ast.AST, path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    package = ".".join(("guardrail", *path.relative_to(SRC).with_suffix("").parts[:-1]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "guardrail":  # from guardrail import errors -> guardrail.errors
                found.extend((node.lineno, f"guardrail.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, module))
    return found


def violations(layers: list[list[str]]) -> list[str]:
    rank = {name: len(layers) - index for index, names in enumerate(layers) for name in names}
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        importer = unit_of_file(path)
        if importer not in rank:
            problems.append(f"{path.relative_to(ROOT)}: {importer!r} is in no layer of README.md")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, module in imported_modules(tree, path):
            imported = unit_of_module(module)
            if imported is None or imported == importer:
                continue
            if imported not in rank:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {module} is in no layer")
            elif rank[imported] > rank[importer]:
                problems.append(
                    f"{path.relative_to(ROOT)}:{line}: {importer} imports {module} (up)"
                )
            elif rank[imported] == rank[importer] and (importer, imported) not in SIDEWAYS_ALLOWED:
                problems.append(
                    f"{path.relative_to(ROOT)}:{line}: {importer} imports {module} (sideways)"
                )
    return problems


def test_every_import_points_down_the_readme_layers() -> None:
    assert violations(readme_layers()) == []


def test_the_check_catches_an_upward_and_a_sideways_import() -> None:
    layers = readme_layers()
    # Swap lang and engine: the engine's imports of the language now point up.
    swapped = [
        ["lang"] if names == ["engine"] else ["engine"] if names == ["lang"] else names
        for names in layers
    ]
    assert any("engine imports guardrail.lang" in p and "(up)" in p for p in violations(swapped))
    # Put guard beside context: the guard's imports of context become sideways.
    merged = [names for names in layers if names != ["guard"]]
    merged = [[*names, "guard"] if names == ["context"] else names for names in merged]
    assert any("guard imports guardrail.context" in p for p in violations(merged))


def test_the_layer_table_names_the_documented_packages() -> None:
    names = [name for layer in readme_layers() for name in layer]
    assert names[-3:] == ["model", "errors", "version"]
    assert len(names) == len(set(names))
    for unit in ("lang", "engine", "context", "guard", "counter", "audit", "cli"):
        assert unit in names
