"""The subpackages are layers (issue 15): a module imports only from its own layer or the ones below, so a
cell never depends on a trainer and a new search strategy cannot pull nnU-Net glue into the search space.
Read from the source with ``ast`` (function-level imports included), not by importing."""
import ast
from pathlib import Path

import nnunet_iac

PACKAGE = Path(nnunet_iac.__file__).resolve().parent
LAYERS = ("common", "cells", "network", "search", "nnunet", "selection", "benchmark", "tools")
# nnunet_iac/__init__.py (public names) and the legacy forwarder of old plans.json class paths sit above all
TOP = len(LAYERS)


def layer_of(module: str) -> int | None:
    """Layer index of an ``nnunet_iac.<sub>...`` module name; None for anything outside the package."""
    parts = module.split(".")
    if parts[0] != "nnunet_iac":
        return None
    if len(parts) == 1 or parts[1] not in LAYERS:
        return TOP
    return LAYERS.index(parts[1])


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_module_is_in_a_layer():
    """A new module at the top of the package (outside the subpackages) would escape the layer rule."""
    allowed_top = {"__init__.py", "__main__.py", "implanted_network.py"}
    stray = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in allowed_top)
    assert not stray, f"modules outside the layered subpackages {LAYERS}: {stray}"


def test_no_module_imports_from_a_layer_above_its_own():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] not in LAYERS:
            continue
        own = LAYERS.index(relative.parts[0])
        for module in imported_modules(path):
            other = layer_of(module)
            if other is not None and other > own:
                violations.append(f"{relative} (layer {LAYERS[own]}) imports {module}")
    assert not violations, "imports against the layer order " + " < ".join(LAYERS) + ":\n" + "\n".join(violations)


def test_the_check_sees_a_violation(tmp_path):
    """The rule's reader finds function-level imports too (where a lazy import would hide a cycle)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from nnunet_iac.nnunet.settings import IACSettings\n")
    assert layer_of(next(iter(imported_modules(module)))) == LAYERS.index("nnunet")
