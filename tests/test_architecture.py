"""The module boundaries the architecture promises, checked on the source (docs/index.md, Code layout).

- no import cycles between pldistill's modules (lazy imports inside functions count too);
- no module imports another module's private (``_name``) names;
- a loss is named only in its own file: everything else reads the registry;
- only the tracking module imports wandb.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pldistill"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, list[tuple[str, list[str]]]]:
    """module → [(imported module, names imported from it)] for every import statement in it."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module(path)
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        found = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                found.append((target, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                found += [(a.name, []) for a in node.names]
        out[module] = found
    return out


def test_no_import_cycles_between_modules():
    imports = _imports()
    graph = {}
    for module, found in imports.items():
        targets = set()
        for target, names in found:
            targets |= {target, *(f"{target}.{n}" for n in names)}  # `from .losses import sp` imports a module
        # a module's own packages run first on any import of it: those edges are not cycles
        graph[module] = {t for t in targets if t in imports and t != module and not module.startswith(t + ".")}
    done, path = set(), []

    def visit(module):
        if module in path:
            cycle = path[path.index(module):] + [module]
            pytest.fail(f"import cycle: {' → '.join(cycle)}")
        if module in done:
            return
        path.append(module)
        for target in sorted(graph[module]):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_no_module_imports_private_names_of_another():
    private = [f"{module}: from {target} import {name}" for module, found in _imports().items()
               for target, names in found for name in names
               if name.startswith("_") and not name.startswith("__") and target.startswith("pldistill")]
    assert not private, private


def test_a_loss_is_named_only_in_its_own_file():
    from pldistill.losses import all_losses

    sources = {p: p.read_text() for p in PACKAGE.rglob("*.py")}
    for name in all_losses():
        own = PACKAGE / "losses" / f"{name}.py"
        pattern = re.compile(rf"[\"']{name}[\"']|\b{name}_loss\b|\.{name} import|losses\.{name}\b")
        elsewhere = sorted(str(p.relative_to(ROOT)) for p, text in sources.items() if p != own and pattern.search(text))
        assert not elsewhere, f"loss {name!r} is named outside {own.relative_to(ROOT)}: {elsewhere}"


def test_only_the_tracking_module_imports_wandb():
    users = sorted(module for module, found in _imports().items()
                   if any(target == "wandb" or target.startswith("wandb.") for target, _ in found))
    assert users == ["pldistill.tracking"], users
