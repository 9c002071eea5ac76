"""The package's architecture: imports point one way, with no cycle, and the pipelines stand alone."""

import ast
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# where each importable part of `sfd` lives (pyproject.toml maps pipelines/ and demo/ into the package)
SOURCES = {"sfd": ROOT / "sfd", "sfd.pipelines": ROOT / "pipelines", "sfd.demo": ROOT / "demo"}
# layer of each sub-package: a module imports only from lower layers or from its own sub-package
LAYERS = {
    "sfd.pipelines": 0,
    "sfd.core": 1,
    "sfd.data": 1,
    "sfd.evaluation": 2,
    "sfd.training": 3,
    "sfd.baselines": 3,
    "sfd.cli": 4,
    "sfd.pretrain": 4,
    "sfd.demo": 4,
    "sfd.train": 5,
    "sfd": 5,
}
# what the pipelines (the code an exported folder needs) may import: the standard library and diffusers' own stack
# (huggingface_hub is a dependency of diffusers)
PIPELINE_LIBRARIES = {"torch", "diffusers", "transformers", "huggingface_hub", "numpy", "PIL"}


def modules(sources: dict[str, Path]) -> dict[str, Path]:
    """Dotted module name → file, for every .py file under the sources."""
    found = {}
    for prefix, folder in sources.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([prefix, *parts])
            if prefix == "sfd" and any(name == p or name.startswith(p + ".") for p in sources if p != "sfd"):
                continue
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(modules of the package that `name` imports, anywhere in the file; top-level names of outside libraries)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            targets = [(module, a.name) for a in node.names]
        for module, member in targets:
            if module.split(".")[0] != "sfd":
                outside.add(module.split(".")[0])
                continue
            full = f"{module}.{member}" if member and f"{module}.{member}" in known else module
            while full not in known and "." in full:
                full = full.rpartition(".")[0]
            if full != name:
                inside.add(full)
    return inside, outside


def import_graph(sources: dict[str, Path]) -> dict[str, set[str]]:
    found = modules(sources)
    return {name: imports_of(name, path, set(found))[0] for name, path in found.items()}


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        return err.args[1]
    return None


def layer_of(name: str) -> tuple[str, int]:
    best = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return best, LAYERS[best]


def test_the_import_checker_finds_a_planted_cycle_and_an_upward_import(tmp_path):
    pkg = tmp_path / "sfd"
    (pkg / "core").mkdir(parents=True)
    (pkg / "training").mkdir()
    for init in (pkg, pkg / "core", pkg / "training"):
        (init / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from ..training import b\n")  # upward, inside a function
    (pkg / "training" / "b.py").write_text("from ..core.a import f\n")
    graph = import_graph({"sfd": pkg})
    assert graph["sfd.core.a"] == {"sfd.training.b"}
    assert set(cycle_in(graph)) == {"sfd.core.a", "sfd.training.b"}


def test_no_import_cycle_inside_the_package():
    graph = import_graph(SOURCES)
    assert len(graph) > 40  # the whole package was read
    assert cycle_in(graph) is None, f"import cycle: {' -> '.join(cycle_in(graph))}"


def test_imports_point_down_the_layers_and_evaluation_never_imports_training():
    upward = []
    for name, targets in import_graph(SOURCES).items():
        package, rank = layer_of(name)
        for target in targets:
            target_package, target_rank = layer_of(target)
            if target_package != package and target_rank >= rank:
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_pipelines_import_only_torch_diffusers_and_transformers():
    found = modules(SOURCES)
    known = set(found)
    for name, path in found.items():
        if not name.startswith("sfd.pipelines"):
            continue
        inside, outside = imports_of(name, path, known)
        assert all(t.startswith("sfd.pipelines") for t in inside), (name, inside)
        assert outside - PIPELINE_LIBRARIES - set(sys.stdlib_module_names) == set(), (name, outside)


@pytest.mark.parametrize("folder", ["sfd", "pipelines", "demo", "bench", "tests"])
def test_nothing_edits_sys_path(folder):
    """Scripts, tests and the demo import the installed package; none reaches into the source tree."""
    this = Path(__file__).resolve()
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / folder).rglob("*.py")
        if p.resolve() != this and any(f"sys.path.{verb}(" in p.read_text() for verb in ("insert", "append"))
    ]
    assert offenders == []
