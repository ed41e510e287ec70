"""The house's structure: no import cycles, and the apps depend in one direction.

Imports are read from the source (``ast``), including those inside functions,
where a cycle hides from the interpreter until the day it bites. Allowed:

    digits_site  ←  audit  ←  classifier  ←  collector  ←  training  ←  operations

``digits_site`` is the ground floor (settings, web plumbing, errors, limits):
every app imports it and it imports none of them. ``audit`` (the site's history)
is the first floor: every app writes to it and it reads none. ``operations`` (serving the
processes, the cluster, backups, the storage check) sits above them all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("digits_site", "audit", "classifier", "collector", "training", "operations")
# Each floor may import the floors below it only.
FORBIDDEN = {app: APPS[index + 1 :] for index, app in enumerate(APPS)}
# Longer than this, a module has grown several jobs (migrations and tests aside).
MAX_MODULE_LINES = 450


def project_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``module`` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports the module pkg.mod when there is one
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for name in names:
            # the longest project module the name starts with
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {module: imports_of(module, path, known) for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_inside_functions():
    # given the reader, on the task module that defers importing the TensorFlow side
    graph = import_graph()
    # then the deferred import is an edge like any other
    assert "training.runs" in graph["training.tasks"]
    assert "classifier.predictor" in graph["classifier.models"]


def test_the_cycle_finder_finds_a_hidden_loop():
    loop = {"a.models": {"a.runtime"}, "a.runtime": {"a.models"}, "a.api": {"a.models"}}
    assert cycles(loop) == [["a.models", "a.runtime"]]
    assert cycles({"a.models": set(), "a.runtime": {"a.models"}}) == []


def test_no_module_imports_itself_back_through_another():
    assert cycles(import_graph()) == []


def test_apps_depend_in_one_direction():
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        for forbidden in FORBIDDEN.get(module.split(".")[0], ())
        if target.split(".")[0] == forbidden
    ]
    assert wrong == []


def test_the_ground_floor_imports_no_app():
    graph = import_graph()
    wrong = [
        f"{module} imports {target}"
        for module in sorted(graph)
        if module.split(".")[0] == "digits_site"
        for target in graph[module]
        if target.split(".")[0] != "digits_site"
    ]
    assert wrong == []


def test_the_rule_forbids_an_app_below_importing_one_above():
    assert FORBIDDEN["digits_site"] == (
        "audit", "classifier", "collector", "training", "operations"
    )  # fmt: skip
    assert FORBIDDEN["audit"] == ("classifier", "collector", "training", "operations")
    assert FORBIDDEN["training"] == ("operations",) and FORBIDDEN["operations"] == ()


def test_no_module_has_grown_past_its_size():
    long = {
        module: lines
        for module, path in project_modules().items()
        if ".migrations." not in module
        and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


IMPORT_EACH = r"""
import importlib, os, sys, traceback
import django
django.setup()
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:  # a child that has imported only what django.setup() imports
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(name)
print("FAILED", *failed)
"""


def test_every_module_imports_first_in_a_fresh_process():
    """Catches what the source graph cannot see: a loop through a library (DRF reads
    its settings while ``rest_framework.views`` is half-imported, importing our parser)."""
    import os
    import subprocess
    import sys

    names = sorted(m for m in project_modules() if ".migrations." not in m)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, *names],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "digits_site.settings"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "FAILED", done.stderr[-3000:]


@pytest.mark.django_db
def test_every_model_change_has_its_migration():
    """A model change without its migration (a new choice included) fails here, not
    in a deployment: ``makemigrations --check`` finds nothing to write."""
    import io

    from django.core.management import call_command

    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        raise AssertionError(f"Missing migrations:\n{out.getvalue()}") from None
