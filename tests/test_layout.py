"""The parts of cafebot import one way: no module reaches, even indirectly, back to itself.

``lint-imports`` checks the layers of pyproject.toml; this test checks the one property
that matters most for reading the code, on grimp's graph of every import (module level,
inside functions, and under TYPE_CHECKING alike), module by module.
"""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")  # part of import-linter, in the dev extras


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_among_cafebots_modules() -> None:
    graph = grimp.build_graph("cafebot", cache_dir=None)
    modules = {m for m in graph.modules if m == "cafebot" or m.startswith("cafebot.")}
    edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    assert _circles(edges) == []


def test_the_circle_finder_finds_a_circle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(edges) == [["a", "b", "c"]]


@pytest.mark.parametrize("forbidden", ["cafebot.edge", "cafebot.cli", "cafebot.handler"])
def test_the_site_reaches_neither_the_zulip_edge_nor_the_command_line(forbidden: str) -> None:
    """cafebot.web stands beside the edge: it reads through the parts below, never the edge."""
    graph = grimp.build_graph("cafebot", "zulip", cache_dir=None)
    assert not graph.chain_exists("cafebot.web", forbidden, as_packages=True)
    assert not graph.chain_exists("cafebot.web", "zulip", as_packages=True)
    assert graph.chain_exists("cafebot.cli", "cafebot.web", as_packages=True)  # it is wired in
