"""Stage packages share records and the statistics core, not each other's internals.

The rule: a stage package (segmentation, retrieval, generation, safety,
experiment, reporting) imports another stage package only for the statistics
core (``cpo.experiment.stats``, ``catalog``, ``results``, ``next_test``,
``sequential``). Everything else two stages share lives outside the stage
packages (``cpo.models``, ``cpo.run_folder``,
``cpo.audit``, ``cpo.decisions``, ``cpo.citations``, ``cpo.audience``,
``cpo.conditions``, ``cpo.customer_text``, ``cpo.merge_values``), and what one
stage needs from another package's service is passed in by the pipeline.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cpo"
STAGE_PACKAGES = {"segmentation", "retrieval", "generation", "safety", "experiment", "reporting"}
STATISTICS_CORE = {
    "cpo.experiment.stats",
    "cpo.experiment.catalog",
    "cpo.experiment.results",
    "cpo.experiment.next_test",
    "cpo.experiment.sequential",
}


def _imports(path: Path) -> set[str]:
    """Every module a file imports (``from cpo.experiment import catalog`` counts as the module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _cross_stage_imports(package: str, path: Path) -> set[str]:
    """Modules of another stage package that ``path`` (in ``package``) imports."""
    crossing = set()
    for module in _imports(path):
        parts = module.split(".")
        if parts[0] == "cpo" and len(parts) > 2 and parts[1] in STAGE_PACKAGES - {package}:
            crossing.add(module)
    return crossing


def test_stage_packages_share_only_the_statistics_core() -> None:
    offending = {
        f"{path.relative_to(SRC)} -> {module}"
        for package in STAGE_PACKAGES
        for path in (SRC / package).rglob("*.py")
        for module in _cross_stage_imports(package, path)
        if module not in STATISTICS_CORE
        and not any(module.startswith(f"{core}.") for core in STATISTICS_CORE)
    }
    assert offending == set()


def test_the_check_finds_a_cross_stage_import(tmp_path: Path) -> None:
    module = tmp_path / "example.py"
    module.write_text(
        "from cpo.safety.policy import decide\nfrom cpo.experiment import catalog\n",
        encoding="utf-8",
    )
    found = _cross_stage_imports("experiment", module)
    assert "cpo.safety.policy" in found and "cpo.safety.policy.decide" in found
    assert _cross_stage_imports("reporting", module) >= {"cpo.experiment.catalog"}
