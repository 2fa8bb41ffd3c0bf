"""The package's modules import each other without cycles, counting imports inside functions too (a local import
only hides a cycle), and the config checks stay torch-free."""

import ast
import subprocess
import sys

from conftest import ROOT

SRC = ROOT / "src"


def module_name(path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``module -> seqrec modules it imports`` (anywhere in the file; ``from pkg import name`` counts as an import
    of ``pkg.name`` when that is a module, else of ``pkg``)."""
    modules = {module_name(p): p for p in (SRC / "seqrec").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by depth-first search (one per back edge)."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle():
    """The check has teeth: a hand-made cycle is reported, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 40 and graph["seqrec.data.padding"] == {"seqrec.data.sequences"}
    assert cycles(graph) == []


def test_config_checks_do_not_import_torch():
    """Declarations and checks are torch-free, so a bad value fails in a fraction of a second."""
    code = ("import sys; from seqrec.core import registry; import seqrec.config.checks; registry.discover(); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(len(registry.components('model')))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout) >= 4


#: the package's layers, lowest first; a module may import its own layer and the ones before it
LAYERS = ("core", "data", "models", "generation", "tracking", "config", "evaluation", "training", "api", "cli",
          "experiments")


def layer_violations(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """``"a -> b"`` for every import of a higher layer (the root ``seqrec`` counts as above every layer)."""
    def rank(module: str) -> int:
        parts = module.split(".")
        return layers.index(parts[1]) if len(parts) > 1 and parts[1] in layers else len(layers)

    return sorted(f"{a} -> {b}" for a, edges in graph.items() if a != "seqrec" for b in edges
                  if rank(b) > rank(a))


def test_layer_checker_has_teeth():
    graph = {"seqrec.core.io": {"seqrec.data.split"}, "seqrec.data.split": {"seqrec.core.io"}, "seqrec": {"seqrec.api"}}
    assert layer_violations(graph) == ["seqrec.core.io -> seqrec.data.split"]
    assert layer_violations({"seqrec.models.gpt2": {"seqrec"}}) == ["seqrec.models.gpt2 -> seqrec"]


def test_every_module_lives_in_a_layer_and_imports_downwards():
    graph = import_graph()
    loose = sorted(m for m in graph if m != "seqrec" and m.split(".")[1] not in LAYERS)
    assert loose == [], f"modules outside the layers {LAYERS}: {loose}"
    assert layer_violations(graph) == []


def test_every_layer_says_what_it_holds():
    import importlib

    for layer in LAYERS:
        path = SRC / "seqrec" / layer / "__init__.py"
        if not path.exists():
            continue  # a layer still to come is not an error of the ones present
        doc = importlib.import_module(f"seqrec.{layer}").__doc__ or ""
        assert "May import" in doc or "may import" in doc, f"seqrec.{layer} does not say what it may import"
