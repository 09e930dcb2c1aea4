"""The project's imports point one way, app -> blueprints -> crm, mail -> models, with no circles.

Every import counts: at the top, inside functions and under `if TYPE_CHECKING:`.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("blueprints", "crm", "mail")
TOP_MODULES = ("app", "models", "queries", "fulltext")
# What each layer may import from the project (besides itself).
# fulltext (what a word is, for search) is generic like queries, and the models use it too (a
# row's words are computed as it is written), so it imports nothing of the project.
ALLOWED = {
    "app": {"blueprints", "crm", "mail", "models", "queries", "fulltext"},
    "blueprints": {"crm", "mail", "models", "queries", "fulltext"},
    "crm": {"models", "queries", "fulltext"},
    "mail": {"models", "queries", "fulltext"},
    "queries": {"models", "fulltext"},
    "models": {"fulltext"},
    "fulltext": set(),
}
# Within mail/, the flow: reading and inbound use the shared top, outbound also stores what it
# sends the way inbound stores what it fetches; nothing points back up the flow.
MAIL_ALLOWED = {
    "mail": set(),  # the shared modules at the top of mail/
    "mail.inbound": {"mail"},
    "mail.reading": {"mail"},
    "mail.outbound": {"mail", "mail.inbound"},
    "mail.demo": {"mail", "mail.inbound", "mail.reading"},
}
PROTOCOL_LIBRARIES = ("poplib", "smtplib", "email")


def project_modules() -> dict[str, Path]:
    modules = {name: ROOT / f"{name}.py" for name in TOP_MODULES}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules that `path` imports anywhere in its text."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@functools.cache  # read once a run: every module's test asks for the whole graph
def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, name, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer(name: str) -> str:
    return name.split(".")[0]


def mail_part(name: str) -> str:
    parts = name.split(".")
    if len(parts) > 1 and parts[1] in ("inbound", "outbound", "reading", "demo"):
        return ".".join(parts[:2])
    return "mail"


def test_find_cycle_finds_a_circle_and_passes_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_of_sees_type_checking_and_function_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mail.inbound import ledger\n"
                      "def f():\n    from crm.records import save\n")
    assert imports_of(source, "mail.x", {"mail.inbound.ledger", "crm.records", "crm"}) == {
        "mail.inbound.ledger", "crm.records"}


def test_no_import_circle_in_the_project() -> None:
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize("name", sorted(project_modules()))
def test_imports_point_one_way(name: str) -> None:
    graph = import_graph()
    wrong = sorted(t for t in graph[name] if layer(t) != layer(name) and layer(t) not in ALLOWED[layer(name)])
    assert not wrong, f"{name} imports {wrong} against app -> blueprints -> crm, mail -> models"
    if layer(name) == "mail":
        part = mail_part(name)
        back = sorted(t for t in graph[name]
                      if layer(t) == "mail" and mail_part(t) != part and mail_part(t) not in MAIL_ALLOWED[part])
        assert not back, f"{name} imports {back} against the way mail flows"
    assert "app" not in graph[name] or name == "app"


@pytest.mark.parametrize("name", sorted(n for n in project_modules() if layer(n) == "blueprints"))
def test_blueprints_leave_mail_protocols_to_the_domain(name: str) -> None:
    tree = ast.parse(project_modules()[name].read_text())
    used = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    used |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not used & set(PROTOCOL_LIBRARIES)
