"""The architecture as the imports show it: no import circle anywhere (TYPE_CHECKING imports
counted), and the layer contracts of pyproject.toml hold (`lint-imports`, as CI runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

from tests.conftest import ROOT


def test_no_import_circle() -> None:
    graph = grimp.build_graph("edge_agent", "drivers", "simulators", cache_dir=None)
    circles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                circles.append((module, *chain))
    assert circles == []


def test_only_the_cli_imports_the_controller() -> None:
    graph = grimp.build_graph("edge_agent", cache_dir=None)
    assert graph.find_modules_that_directly_import("edge_agent.app") == {"edge_agent.cli"}


def test_layer_contracts_hold_and_a_wrong_import_breaks_them(tmp_path: Path) -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    ok = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert "BROKEN" not in ok.stdout and ok.stdout.count("KEPT") >= 5
    # the same contracts on a copy of the package with one import against the layers
    copy = tmp_path / "tree"
    subprocess.run(["cp", "-r", str(ROOT / "edge_agent"), str(ROOT / "drivers"), str(ROOT / "simulators"),
                    str(ROOT / "pyproject.toml"), str(copy.parent)], check=True)  # fmt: skip
    store = tmp_path / "edge_agent" / "store" / "outbox.py"
    store.write_text(store.read_text() + "\nfrom edge_agent.fleet import Fleet  # noqa\n")
    broken = subprocess.run([str(lint)], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert broken.returncode != 0 and "BROKEN" in broken.stdout
    assert "edge_agent.store is not allowed to import edge_agent.fleet" in broken.stdout
