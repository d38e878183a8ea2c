"""The package's import graph: no cycle, the registry a leaf, and every module importable in any order.

The static checks read the source with ``ast`` (module-level imports: what runs when a module is imported;
imports inside functions and ``if TYPE_CHECKING:`` blocks do not). The dynamic check imports every module in
a few shuffled orders, one subprocess per order, so a cycle that only bites in one order still shows up.
"""

from __future__ import annotations

import ast
import graphlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "cockatoo_ml"
# What the registry may import from the package: itself, the error types and the settings layer.
REGISTRY_MAY_IMPORT = (f"{PACKAGE}.registry", f"{PACKAGE}.errors", f"{PACKAGE}.settings")
# The stages (one folder each). The model stages read what ``data`` wrote (its contract, its readers for
# ``evaluate.py --sources``) but never each other: what they share lives in the shared layers beneath them
# (inference, metrics, modeling, settings, registry, ...). Only ``pipeline`` chains stages, and no module of the
# package imports it.
STAGES = ("data", "training", "evaluation", "distillation", "serving", "bulk")
UPSTREAM = {stage: ("data",) for stage in STAGES if stage != "data"} | {"data": ()}
ORCHESTRATOR = f"{PACKAGE}.pipeline"
ORDERS = 3  # shuffled import orders (one process each: importing torch dominates, a few seconds per process)


def package_modules(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``root`` (packages by __init__)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported: not in functions nor under TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node):
            found += _module_level_imports(node.orelse)
        else:  # class bodies, if/else, try/except/finally, with, loops, match cases
            for child in ast.iter_child_nodes(node):
                inner = getattr(child, "body", None) if not isinstance(child, ast.stmt) else [child]
                if isinstance(inner, list):
                    found += _module_level_imports([c for c in inner if isinstance(c, ast.stmt)])
    return found


def imported_modules(name: str, path: Path, modules: dict[str, Path], module_level: bool = True) -> set[str]:
    """The package modules that ``name`` imports (``from pkg import submodule`` counts as the submodule)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    statements = _module_level_imports(tree.body) if module_level else [
        node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    for node in statements:
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: climb from this module's package
            anchor = name.split(".") if is_package else name.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        targets.add(base)
        targets.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules)
    return {target for target in targets if target in modules and target != name}


def import_graph(root: Path, package: str = PACKAGE, module_level: bool = True) -> dict[str, set[str]]:
    modules = package_modules(root, package)
    return {name: imported_modules(name, path, modules, module_level) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


@pytest.mark.parametrize("module_level", [True, False], ids=["module-level", "late-imports-too"])
def test_the_package_has_no_import_cycle(module_level: bool) -> None:
    # Late imports too: a cycle closed by an import inside a function (as registry/sources.py <-> data/sources.py
    # once was) imports fine but still ties the layers together.
    graph = import_graph(REPO, module_level=module_level)
    assert f"{PACKAGE}.data.sources" in graph[f"{PACKAGE}.data.prepare"]  # the graph sees real edges
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_the_registry_imports_nothing_of_the_package_but_itself_errors_and_settings() -> None:
    modules = package_modules(REPO)
    registry = {name: path for name, path in modules.items() if name.startswith(f"{PACKAGE}.registry")}
    assert f"{PACKAGE}.registry.paths" in registry
    for name, path in registry.items():  # every import, late ones inside functions included
        outside = sorted(
            target for target in imported_modules(name, path, modules, module_level=False)
            if target != PACKAGE and not target.startswith(REGISTRY_MAY_IMPORT)
        )
        assert not outside, f"{name} imports {outside}: the registry must stay the bottom layer"


def stage_of(module: str, package: str = PACKAGE) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == package and parts[1] in STAGES else None


def layer_violations(graph: dict[str, set[str]], package: str = PACKAGE) -> list[str]:
    """Every import that breaks the layering: a stage importing another (beyond its upstream), a shared layer
    importing a stage, or anything importing the orchestrator."""
    found = []
    orchestrator = f"{package}.pipeline"
    for module, targets in sorted(graph.items()):
        if module == orchestrator:
            continue
        here = stage_of(module, package)
        for target in sorted(targets):
            there = stage_of(target, package)
            if target == orchestrator:
                found.append(f"{module} imports {target}: only the entry points may chain stages")
            elif there is not None and there != here and there not in UPSTREAM.get(here or "", ()):
                what = f"the {here} stage" if here else "a shared layer"
                found.append(f"{module} ({what}) imports {target} (the {there} stage)")
    return found


def test_stages_import_shared_layers_never_each_other() -> None:
    graph = import_graph(REPO, module_level=False)  # late imports inside functions count too
    assert f"{PACKAGE}.inference.classifier" in graph[f"{PACKAGE}.serving.app"]  # the graph sees the core
    violations = layer_violations(graph)
    assert not violations, "layering broken:\n" + "\n".join(violations)


def test_the_layer_check_names_each_kind_of_violation(tmp_path: Path) -> None:
    root = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/pipeline.py": "from pkg.serving import app\nfrom pkg.training import run\n",
        "pkg/inference/__init__.py": "",
        "pkg/inference/core.py": "def late():\n    from pkg.serving import app\n",
        "pkg/serving/__init__.py": "",
        "pkg/serving/app.py": "from pkg.inference import core\nfrom pkg.distillation import run\n",
        "pkg/distillation/__init__.py": "",
        "pkg/distillation/run.py": "from pkg.data import contract\n",
        "pkg/data/__init__.py": "",
        "pkg/data/contract.py": "import pkg.pipeline\n",
        "pkg/training/__init__.py": "",
        "pkg/training/run.py": "",
    })
    violations = layer_violations(import_graph(root, "pkg", module_level=False), "pkg")
    assert violations == [
        "pkg.data.contract imports pkg.pipeline: only the entry points may chain stages",
        "pkg.inference.core (a shared layer) imports pkg.serving (the serving stage)",
        "pkg.inference.core (a shared layer) imports pkg.serving.app (the serving stage)",
        "pkg.serving.app (the serving stage) imports pkg.distillation (the distillation stage)",
        "pkg.serving.app (the serving stage) imports pkg.distillation.run (the distillation stage)",
    ]


def test_the_checks_find_cycles_and_a_registry_import(tmp_path: Path) -> None:
    root = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "import pkg.c\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\ntry:\n    from . import a\n"
                    "except ImportError:\n    pass\n",
        "pkg/e.py": "import pkg.f\n",
        "pkg/f.py": "def late():\n    import pkg.e\n",
        "pkg/registry/__init__.py": "",
        "pkg/registry/x.py": "class X:\n    def late(self):\n        from ..e import late\n",
    })
    graph = import_graph(root, "pkg")
    assert graph["pkg.f"] == set() and graph["pkg.registry.x"] == set()  # late imports run on call only
    assert sorted(find_cycle(graph) or []) == ["pkg.a", "pkg.a", "pkg.b", "pkg.c"]  # closed by the try import
    graph["pkg.c"] = set()
    assert find_cycle(graph) is None
    assert sorted(find_cycle({**import_graph(root, "pkg", module_level=False), "pkg.c": set()}) or []) == [
        "pkg.e", "pkg.e", "pkg.f",
    ]
    modules = package_modules(root, "pkg")
    assert imported_modules("pkg.registry.x", modules["pkg.registry.x"], modules, module_level=False) == {"pkg.e"}


@pytest.fixture(scope="module")
def import_runs() -> list[tuple[list[str], subprocess.CompletedProcess[str]]]:
    """Every module imported in ORDERS shuffled orders, the processes running side by side."""
    names = sorted(package_modules(REPO))
    orders = [random.Random(seed).sample(names, len(names)) for seed in range(ORDERS)]
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    processes = [
        subprocess.Popen([sys.executable, "-c", script, *order], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for order in orders
    ]
    runs = []
    for order, process in zip(orders, processes):
        stdout, stderr = process.communicate(timeout=600)
        runs.append((order, subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)))
    return runs


@pytest.mark.parametrize("run", range(ORDERS))
def test_every_module_imports_in_a_shuffled_order(import_runs, run: int) -> None:
    order, result = import_runs[run]
    assert len(order) == len(package_modules(REPO)) and order != sorted(order)
    assert result.returncode == 0, f"importing in the order {order} failed:\n{result.stderr[-3000:]}"
