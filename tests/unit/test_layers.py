"""Imports flow one way: no package of src/mirrorwatch imports a package above it, and no modules
import each other in a circle.

The layer order (lowest first; a package may import its own layer and the layers below it):

    errors, config, store, webhooks  <  formats, hashing, text  <  bank  <  hubs  <  match  <  sweep  <
    review, reports  <  services  <  demo, testhub, corpus, watch  <  cli, web

demo, testhub and corpus sit on top of what they use and below the CLI and the web app (the
`demo` command), so nothing in the pipeline may import them. Every import counts: module level,
function-local, under `if TYPE_CHECKING:`, relative, and `importlib.import_module("mirrorwatch...")`
with a literal name. A package missing from LAYERS fails the test, so a new package must be given
its place explicitly.

The check reads the source with `ast` (nothing is imported or executed) and reports every offending
edge as `module:line -> module`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mirrorwatch

PACKAGE = Path(mirrorwatch.__file__).resolve().parent

LAYERS: list[set[str]] = [
    {"errors", "config", "store", "webhooks"},
    {"formats", "hashing", "text", "display"},
    {"bank"},
    {"hubs"},
    {"match"},
    {"sweep"},
    {"services"},
    {"demo", "testhub", "corpus", "watch"},
    {"cli", "web"},
]

# Known violations: none. An entry here would have to be justified; an entry that is no longer a
# violation fails the test, so the list cannot go stale.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, e.g. mirrorwatch.bank.importer
    target: str  # imported module (or package, when the name is not a module of its own)
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}"


def modules() -> dict[str, Path]:
    """Every module of the installed source tree by dotted name (packages by their own name)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_names(module: str, path: Path, tree: ast.AST) -> Iterator[tuple[str, int, list[str]]]:
    """(imported module name, line, names imported from it) for every import statement."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield name, node.lineno, [a.name for a in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value, node.lineno, []


def import_edges() -> list[Edge]:
    mods = modules()
    edges = set()
    for module, path in mods.items():
        for name, line, names in imported_names(module, path, ast.parse(path.read_text(), str(path))):
            if name != "mirrorwatch" and not name.startswith("mirrorwatch."):
                continue
            # `from mirrorwatch.match import exact` imports the module mirrorwatch.match.exact
            targets = [f"{name}.{n}" if f"{name}.{n}" in mods else name for n in names] or [name]
            edges.update(Edge(module, t, line) for t in targets if t != module)
    return sorted(edges, key=lambda e: (e.source, e.line, e.target))


def package_of(module: str) -> str | None:
    """The first-level package (or top-level module) a module belongs to; None for mirrorwatch itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_of(package: str) -> int | None:
    return next((i for i, layer in enumerate(LAYERS) if package in layer), None)


def upward(edges: list[Edge]) -> list[Edge]:
    """Edges from a package to one in a higher layer."""
    out = []
    for e in edges:
        src, dst = package_of(e.source), package_of(e.target)
        if src is None or dst is None or src == dst or layer_of(src) is None or layer_of(dst) is None:
            continue  # packages without a layer are reported by test_every_package_has_a_layer
        if layer_of(src) < layer_of(dst):
            out.append(e)
    return out


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted; whole packages too."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the import chain length
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def package_edges(edges: list[Edge]) -> list[Edge]:
    """The same graph between first-level packages (`mirrorwatch.<package>`)."""
    out = {}
    for e in edges:
        src, dst = package_of(e.source), package_of(e.target)
        if src and dst and src != dst:
            out.setdefault((src, dst), Edge(f"mirrorwatch.{src}", f"mirrorwatch.{dst}", e.line))
    return list(out.values())


def allowed(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if (e.source, e.target) not in KNOWN_VIOLATIONS]


def test_every_package_has_a_layer():
    packages = {package_of(m) for m in modules()} - {None}
    missing = sorted(p for p in packages if layer_of(p) is None)
    assert not missing, f"give these packages a place in LAYERS (tests/unit/test_layers.py): {missing}"


def test_no_package_imports_a_higher_layer():
    bad = upward(allowed(import_edges()))
    assert not bad, "upward imports (lower layers must not import higher ones):\n" + "\n".join(map(str, bad))


def module_edges(edges: list[Edge]) -> list[Edge]:
    """Edges between modules, less those from a module to a package containing it: Python runs a
    package's __init__ before any of its modules anyway, so that edge is always there, and a real
    problem with it (the package importing the module at load time while the module needs a name the
    package has not yet defined) fails at import, in every test."""
    return [e for e in edges if not e.source.startswith(e.target + ".")]


def test_no_import_cycles_between_modules():
    found = cycles(module_edges(allowed(import_edges())))
    assert not found, "import cycles between modules:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_import_cycles_between_packages():
    found = cycles(package_edges(allowed(import_edges())))
    assert not found, "import cycles between packages:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_known_violations_are_still_needed():
    """Each allow-listed edge must exist and still be a violation; otherwise delete it from the list."""
    edges = import_edges()
    in_cycle = {m for group in cycles(module_edges(edges)) + cycles(package_edges(edges)) for m in group}
    needed = {(e.source, e.target) for e in upward(edges)}
    needed |= {(e.source, e.target) for e in edges if e.source in in_cycle and e.target in in_cycle}
    needed |= {(e.source, e.target) for e in edges
               if f"mirrorwatch.{package_of(e.source)}" in in_cycle and f"mirrorwatch.{package_of(e.target)}" in in_cycle}
    stale = sorted(KNOWN_VIOLATIONS - needed)
    assert not stale, f"no longer violations: remove them from KNOWN_VIOLATIONS: {stale}"


def test_the_checker_sees_every_kind_of_import():
    """Relative, function-local, `from package import module` and import_module imports are found."""
    code = (
        "from . import exact\n"
        "from ..bank import names as n\n"
        "def f():\n"
        "    import mirrorwatch.cli.main\n"
        "    from mirrorwatch.web import app\n"
        "    importlib.import_module('mirrorwatch.sweep.runner')\n"
    )
    path = PACKAGE / "match" / "probe.py"  # only its location is used; nothing is written there
    found = {name for name, _, _ in imported_names("mirrorwatch.match.probe", path, ast.parse(code))}
    assert found == {"mirrorwatch.match", "mirrorwatch.bank", "mirrorwatch.cli.main", "mirrorwatch.web",
                     "mirrorwatch.sweep.runner"}
    assert upward([Edge("mirrorwatch.match.probe", "mirrorwatch.cli.main", 4)])
    assert not upward([Edge("mirrorwatch.sweep.runner", "mirrorwatch.match.robust", 1)])
    assert cycles([Edge("a", "b", 1), Edge("b", "c", 1), Edge("c", "a", 1), Edge("c", "d", 1)]) == [["a", "b", "c"]]
