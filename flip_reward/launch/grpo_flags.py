"""The command-line flags upstream ``grpo_fast.py`` accepts, read from a checkout's source without importing it.

``grpo_fast.py`` imports vLLM and DeepSpeed at the top, so its parser cannot be built on a machine without CUDA.
Its flags are the fields of the dataclasses passed to ``ArgumentParserPlus((...))`` in its ``__main__`` block (and
of their base classes); this module finds those classes through the modules' imports and collects the fields with
``ast``, so a script's flags can be checked anywhere.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ENTRY = "open_instruct/grpo_fast.py"


@dataclass(frozen=True)
class _Module:
    name: str
    tree: ast.Module

    def classes(self) -> dict[str, ast.ClassDef]:
        return {node.name: node for node in self.tree.body if isinstance(node, ast.ClassDef)}

    def imports(self) -> dict[str, tuple[str, str | None]]:
        """alias -> (module, symbol or None for a module import)."""
        found: dict[str, tuple[str, str | None]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    found[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    found[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
        return found


class _Source:
    def __init__(self, checkout: Path):
        self.checkout = checkout
        self._modules: dict[str, _Module | None] = {}

    def module(self, name: str) -> _Module | None:
        """The parsed module ``name`` of the checkout (cached), or None when it is not part of it."""
        if name not in self._modules:
            relative = Path(*name.split("."))
            paths = (self.checkout / relative.with_suffix(".py"), self.checkout / relative / "__init__.py")
            found = next((path for path in paths if path.is_file()), None)
            self._modules[name] = None if found is None else _Module(name, ast.parse(found.read_text("utf-8")))
        return self._modules[name]

    def resolve(self, module: _Module, expr: ast.expr) -> tuple[_Module, ast.ClassDef] | None:
        """The class an expression (``Name`` or ``alias.Name``) refers to in ``module``."""
        if isinstance(expr, ast.Name):
            if expr.id in module.classes():
                return module, module.classes()[expr.id]
            target = module.imports().get(expr.id)
            if target and target[1] is not None:
                source = self.module(target[0])
                return None if source is None else self.resolve(source, ast.Name(id=target[1]))
            return None
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            target = module.imports().get(expr.value.id)
            if target is None:
                return None
            name = target[0] if target[1] is None else f"{target[0]}.{target[1]}"
            source = self.module(name)
            return None if source is None else self.resolve(source, ast.Name(id=expr.attr))
        return None

    def fields(self, module: _Module, node: ast.ClassDef) -> set[str]:
        names: set[str] = set()
        for base in node.bases:
            resolved = self.resolve(module, base)
            if resolved is not None:
                names |= self.fields(*resolved)
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                if _init_false(statement.value) or "ClassVar" in ast.unparse(statement.annotation):
                    continue
                names.add(statement.target.id)
        return names


def _init_false(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Call) and any(
        keyword.arg == "init" and isinstance(keyword.value, ast.Constant) and keyword.value.value is False
        for keyword in value.keywords
    )


def _parser_classes(entry: _Module) -> list[ast.expr]:
    for node in ast.walk(entry.tree):
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func).endswith("ArgumentParserPlus")
            and node.args
            and isinstance(node.args[0], ast.Tuple)
        ):
            return list(node.args[0].elts)
    raise ValueError(f"no ArgumentParserPlus((...)) call in {ENTRY}")


def grpo_fast_fields(checkout: str | Path) -> set[str]:
    """Every argument field of upstream grpo_fast.py at ``checkout`` (the directory holding open_instruct/)."""
    source = _Source(Path(checkout))
    entry = source.module("open_instruct.grpo_fast")
    if entry is None:
        raise FileNotFoundError(f"{Path(checkout) / ENTRY} not found")
    fields: set[str] = set()
    for expr in _parser_classes(entry):
        resolved = source.resolve(entry, expr)
        if resolved is None:
            raise ValueError(f"cannot find the class {ast.unparse(expr)} used by {ENTRY}")
        fields |= source.fields(*resolved)
    return fields


def unknown_flags(arguments: list[str], fields: set[str]) -> list[str]:
    """The ``--flags`` in ``arguments`` that grpo_fast.py would reject (``--no_X`` is accepted for a field X;
    dashes and underscores are interchangeable, as in upstream's parser)."""
    unknown = []
    for argument in arguments:
        if not argument.startswith("--"):
            continue
        name = argument[2:].split("=", 1)[0].replace("-", "_")
        if name in fields or (name.startswith("no_") and name[3:] in fields):
            continue
        unknown.append(argument.split("=", 1)[0])
    return unknown
