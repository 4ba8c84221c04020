"""The package's import graph: every module imports, and no flip_reward module imports another that imports it back
(directly or through others), counting the imports made inside functions too; nor does any subpackage (serving,
launch, core, ...) import another that imports it back."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "flip_reward"


def module_files() -> dict[str, Path]:
    """Every flip_reward module by its dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _skipped(node: ast.AST) -> bool:
    """An ``if TYPE_CHECKING:`` or ``if __name__ == "__main__":`` block: imports that never run as the module."""
    return isinstance(node, ast.If) and any(mark in ast.unparse(node.test) for mark in ("TYPE_CHECKING", "__main__"))


def _imports(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    if _skipped(node):
        return []
    found = [node] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
    for child in ast.iter_child_nodes(node):
        found += _imports(child)
    return found


def _names(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement may load (for ``from X import a``: X and X.a)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")[: None if is_package else -1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph() -> dict[str, set[str]]:
    """Each flip_reward module -> the flip_reward modules it imports (module level or inside a function)."""
    modules = module_files()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _names(module, path.name == "__init__.py", node):
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (each a set of modules importing each other)."""
    order, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def test_cycles_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    graph = import_graph()
    assert graph["flip_reward.training.job"] >= {"flip_reward.training.loop"}  # the graph sees deferred imports
    assert cycles(graph) == []


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded onto flip_reward's subpackages and top-level modules (``flip_reward.serving``, ...)."""
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = ".".join(module.split(".")[:2])
        packages.setdefault(source, set()).update(
            target for target in (".".join(name.split(".")[:2]) for name in targets) if target != source
        )
    return packages


def test_no_import_cycle_between_subpackages():
    packages = package_graph(import_graph())
    assert packages["flip_reward.launch"] >= {"flip_reward.serving"}  # launch plans, serving supervises
    assert "flip_reward.launch" not in packages["flip_reward.serving"]
    assert cycles(packages) == []


def test_only_the_command_line_imports_the_command_line():
    """cli/ imports launch/ (and the rest): no other module imports cli/ back; the package's ``__main__`` (``python
    -m flip_reward``, what the launchers and demos run as a child process) is the command line's own entry point."""
    graph = import_graph()
    outside = {
        module: sorted(target for target in targets if target.startswith("flip_reward.cli"))
        for module, targets in graph.items()
        if not module.startswith("flip_reward.cli") and module != "flip_reward.__main__"
    }
    assert {module: targets for module, targets in outside.items() if targets} == {}


@pytest.mark.parametrize("module", sorted(name for name in module_files() if not name.endswith(".__main__")))
def test_every_module_imports(module):
    """Each module imports on its own (``__main__`` runs the CLI, so it is left out); one that needs an optional
    framework that is absent is skipped, naming it."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] == "flip_reward":
            raise
        pytest.skip(f"{module} needs {error.name}, which is not installed")
