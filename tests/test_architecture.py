"""The import graph of ``src/oomd``: one way down the data path, no cycle.

Every module belongs to a layer; a module may import from its own layer or any layer
below, never above, and the graph (``TYPE_CHECKING`` imports included: a cycle for a
type is still a cycle) has no cycle. A new module must be placed in :data:`LAYERS`.

Run ``python -m tests.test_architecture`` to print the graph by layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

#: Top first. Prefixes: ``oomd.plugins`` covers every module below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("oomd.__main__", "oomd.cli", "oomd.commands", "oomd.testing")),
    (
        "daemon",
        (
            "oomd.daemon",
            "oomd.scheduler",
            "oomd.options",
            "oomd.recorder",
            "oomd.replay",
            "oomd.report",
            "oomd.observe",
            "oomd.metrics",
        ),
    ),
    ("config", ("oomd.config", "oomd.dropin")),
    ("plugins", ("oomd.plugins",)),
    ("public API", ("oomd.plugin",)),
    ("engine", ("oomd.engine",)),
    ("host", ("oomd.cgroup", "oomd.kill", "oomd.dbus", "oomd.host")),
    ("side", ("oomd.stats", "oomd.inotify", "oomd.notify", "oomd.trace", "oomd.events")),
    ("base", ("oomd", "oomd.cnum", "oomd.log", "oomd.libc", "oomd.trusted", "oomd.typeshim")),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def layer_of(module: str) -> int:
    """Index in LAYERS of the longest matching prefix."""
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def imports(path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The oomd modules ``path`` imports (``from a import b`` counts as ``a.b`` when
    that is a module, else ``a``)."""

    def owner(name: str) -> str:
        while name not in known:
            name = name.rpartition(".")[0]
        return name

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "oomd":
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if full in known else owner(node.module)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "oomd":
                    yield owner(alias.name)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {target for target in imports(path, known) if target != name}
        for name, path in known.items()
    }


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in modules() if layer_of(m) < 0)
    assert not unplaced, f"place these in LAYERS: {unplaced}"


def test_no_import_goes_up_a_layer() -> None:
    upward = [
        f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for source, targets in graph().items()
        for target in targets
        if layer_of(target) < layer_of(source)
    ]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_an_upward_edge_and_a_cycle() -> None:
    """The rules above would catch what they are for."""
    assert layer_of("oomd.plugins.kill_memory_growth") < layer_of("oomd.plugin")
    assert layer_of("oomd.cli") < layer_of("oomd.daemon") < layer_of("oomd.cgroup.context")
    edges = graph()
    assert "oomd.plugin" in edges["oomd.plugins.pressure_above"]
    assert "oomd.cgroup.context" in edges["oomd.engine.plugin"]


if __name__ == "__main__":
    for index, (name, _) in enumerate(LAYERS):
        print(f"[{name}]")
        for module, targets in sorted(graph().items()):
            if layer_of(module) == index:
                print(f"  {module} -> {', '.join(sorted(targets)) or '-'}")
