"""The package's layout rules, checked on its source: what a newcomer relies on when
adding a metric (see the design notes' layout section)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "softmetrics"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an import-from statement names."""
    if not node.level:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_reaches_a_private_name_of_another(path: Path) -> None:
    """Private names stay in the module that defines them: other modules import public
    names only (public names of a private module, such as `_checks.fail`, are fine), and
    never read an underscored attribute of an imported module."""
    tree = ast.parse(path.read_text())
    modules = set()  # local names bound to softmetrics modules
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(path, node)
            if not source.startswith("softmetrics"):
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*full.split("."))).with_suffix(".py").exists() \
                    or (PACKAGE.parent / Path(*full.split("."))).is_dir()
                if is_module:
                    modules.add(alias.asname or alias.name)
                elif alias.name.startswith("_") and alias.name != "__version__":
                    problems.append(f"line {node.lineno}: imports {alias.name} from {source}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            problems.append(f"line {node.lineno}: reaches {node.value.id}.{node.attr}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_longer_than_a_sitting(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{lines} lines: split its machinery from its public face"


def test_validation_is_imported_from_checks_only() -> None:
    """Checks come from `softmetrics._checks`, never through a module that re-imports
    them (`text.check_int`)."""
    from softmetrics import _checks

    checks = set(_checks.__all__)
    problems = []
    for path in MODULES:
        if path.name == "_checks.py":  # where they are defined (or taken from torch)
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                source = _resolve(path, node)
                if source != "softmetrics._checks":
                    problems += [f"{path.name}: {a.name} from {source}" for a in node.names
                                 if a.name in checks]
            if isinstance(node, ast.Attribute) and node.attr in checks and not (
                    isinstance(node.value, ast.Name) and node.value.id == "_checks"):
                problems.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert not problems, "\n".join(problems)


def test_functional_surrogates_follow_the_api_conventions() -> None:
    """`soft_<metric>(input, target, *, temperature=1.0, ..., validate_args=True)`: two
    positional tensors, then keyword-only options, the same defaults everywhere (the design
    notes' API conventions); the Modules' defaults, `SoftAUROCLoss(temperature=1.0)` and so
    on, are checked through their reprs."""
    import inspect

    from softmetrics import functional

    names = [n for n in functional.__all__ if n.startswith("soft_")]
    assert len(names) >= 20
    for name in names:
        params = inspect.signature(getattr(functional, name)).parameters
        positional = [p.name for p in params.values() if p.kind is not p.KEYWORD_ONLY]
        assert positional[:1] == ["input"] and len(positional) == 2, name
        assert params["temperature"].default == 1.0, name
        assert params["validate_args"].default is True, name
        assert all(p.kind is p.KEYWORD_ONLY for p in list(params.values())[2:]), name
