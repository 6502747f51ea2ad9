"""The run folder has one owner: names, typed readers/writers, import rules.

The last tests read ``src/cpo`` with :mod:`ast`: each artifact's file name is
written as a string once (in :mod:`cpo.run_folder`), no stage module imports
the pipeline, and cpo's modules import each other without a cycle.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import cpo
from cpo import run_folder
from cpo.cli import cli
from cpo.errors import DataValidationError, RunDirError
from cpo.models import Citation, Grounding, SegmentProfile, Snippet, Variant, to_dict
from cpo.run_folder import (
    ARTIFACTS,
    AuditHead,
    read_assignments,
    read_design,
    read_manifest,
    read_profiles,
    read_retrieval,
    read_segments,
    read_variants,
    recorded_audit_head,
    segment_snippets,
    snippet_to_result,
    write_assignments,
    write_design,
    write_engagement,
    write_manifest,
    write_profiles,
    write_retrieval,
    write_segments,
    write_variants,
)

SOURCE = Path(cpo.__file__).parent
STAGE_PACKAGES = ("segmentation", "retrieval", "generation", "safety", "experiment", "reporting")


def test_every_artifact_has_a_unique_name_a_version_and_a_description():
    names = [a.name for a in ARTIFACTS]
    assert len(names) == len(set(names))
    constants = {v for v in vars(run_folder).values() if isinstance(v, run_folder.Artifact)}
    assert constants == set(ARTIFACTS)  # every constant is listed, and nothing else
    for item in ARTIFACTS:
        assert item.schema_version >= 1 and item.description and item.writer
        assert run_folder.artifact(item.file_name) is item
    assert run_folder.LOGS.is_folder and not run_folder.SEGMENTS.is_folder
    with pytest.raises(KeyError):
        run_folder.artifact("nothing.csv")


def test_run_help_lists_the_whole_run_folder():
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    for item in ARTIFACTS:
        line = next(line for line in result.output.splitlines() if item.name in line.split())
        assert item.description in line


def _profiles() -> list[SegmentProfile]:
    return [
        SegmentProfile("Weekend Riders", 0, 3, 0.6, "ride on weekends", {"trips": 4.5}, {}, ()),
        SegmentProfile("Café Regulars", 1, 2, 0.4, "daily coffee", {}, {"visits": 20.0}, ("vip",)),
    ]


def test_profiles_round_trip_through_a_run_folder_or_the_file(tmp_path: Path):
    write_profiles(tmp_path, _profiles(), method="rules", total_customers=5, details={"k": 2})
    assert read_profiles(tmp_path) == _profiles()
    assert read_profiles(tmp_path / "segment_profiles.json") == _profiles()
    stored = json.loads((tmp_path / "segment_profiles.json").read_text(encoding="utf-8"))
    recorded = (stored["method"], stored["total_customers"], stored["details"])
    assert recorded == ("rules", 5, {"k": 2})


def test_profiles_errors_name_the_file(tmp_path: Path):
    missing = "segment_profiles.json: segment profiles not found"
    with pytest.raises(DataValidationError, match=missing):
        read_profiles(tmp_path)
    (tmp_path / "segment_profiles.json").write_text('{"segments": [{}]}', encoding="utf-8")
    with pytest.raises(DataValidationError, match="not a valid segment_profiles.json"):
        read_profiles(tmp_path)


def test_segments_keep_ids_as_text(tmp_path: Path):
    frame = pd.DataFrame(
        {
            "customer_id": ["007", "=A1", "12"],
            "segment": ["Weekend Riders", "Café Regulars", ""],
            "segment_id": [0, 1, 2],
        }
    )
    write_segments(tmp_path, frame)
    back = read_segments(tmp_path)
    assert back["customer_id"].tolist() == ["007", "=A1", "12"]  # no int cast, escaping undone
    assert back["segment"].tolist() == ["Weekend Riders", "Café Regulars", ""]
    with pytest.raises(DataValidationError, match="segment assignments not found"):
        read_segments(tmp_path / "elsewhere")


def test_retrieval_round_trip_and_snippets_per_segment(tmp_path: Path):
    snippet = Snippet("tea-01", "Green teas", 2, "Sencha ships cold.", 3.14159, "tea", "all", "")
    document = {"segments": [{"segment": "Café Regulars", "results": [snippet_to_result(snippet)]}]}
    write_retrieval(tmp_path, document)
    loaded = read_retrieval(tmp_path)
    assert loaded == document
    [back] = segment_snippets(loaded, "Café Regulars")
    assert back.document_id == "tea-01" and back.score == pytest.approx(3.1416)
    with pytest.raises(DataValidationError, match="no segment 'Nobody'"):
        segment_snippets(loaded, "Nobody")
    (tmp_path / "retrieval.json").write_text("{\n  oops", encoding="utf-8")
    with pytest.raises(DataValidationError, match="malformed JSON at line 2") as caught:
        read_retrieval(tmp_path)
    assert "retrieve stage" in (caught.value.hint or "")


def _variant(variant_id: str) -> Variant:
    return Variant(
        variant_id=variant_id,
        segment="Café Regulars",
        tone="friendly",
        subject="Your usual, on us",
        body="Sencha ships cold [tea-01#2].",
        citations=(Citation("tea-01", 2, "Sencha ships cold."),),
        grounding=Grounding(score=0.9, unsupported_claims=("free",)),
    )


def test_variants_round_trip_and_reject_repeated_ids(tmp_path: Path):
    variants = [_variant("v-1"), _variant("v-2")]
    write_variants(tmp_path, {"variants": [to_dict(v) for v in variants], "extra": 1})
    assert read_variants(tmp_path) == variants
    write_variants(tmp_path, {"variants": [to_dict(_variant("v-1"))] * 2})
    with pytest.raises(DataValidationError, match="variant ids repeat: v-1"):
        read_variants(tmp_path / "variants.json")


def test_design_assignments_and_engagement_round_trip(tmp_path: Path):
    with pytest.raises(DataValidationError, match="experiment design not found") as caught:
        read_design(tmp_path)
    assert "assign stage" in (caught.value.hint or "")
    write_design(tmp_path, {"arms": [{"name": "control", "tone": "control"}], "alpha": 0.05})
    assert read_design(tmp_path)["arms"][0]["name"] == "control"
    with pytest.raises(DataValidationError, match="assignments not found"):
        read_assignments(tmp_path)
    frame = pd.DataFrame(
        {"customer_id": ["0042", "+1"], "experiment_arm": ["control", "treatment_1"]}
    )
    write_assignments(tmp_path, frame)
    back = read_assignments(tmp_path)
    assert back.to_dict("list") == {
        "customer_id": ["0042", "+1"],
        "experiment_arm": ["control", "treatment_1"],
    }
    write_engagement(tmp_path, frame.assign(opened=[1, 0]))
    assert (tmp_path / "engagement.csv").read_text(encoding="utf-8").splitlines()[2] == (
        "'+1,treatment_1,0"
    )


def test_engagement_reads_the_same_from_the_csv_and_the_dataset(tmp_path: Path):
    csv_run, dataset_run = tmp_path / "csv", tmp_path / "dataset"
    with pytest.raises(DataValidationError, match="engagement not found") as caught:
        run_folder.read_engagement(tmp_path)
    assert "engage stage" in (caught.value.hint or "")
    frame = pd.DataFrame(
        {
            "customer_id": ["0042", "+1", "7"],
            "experiment_arm": ["control", "treatment_1", "control"],
            "segment": ["=VIP", "Lapsed", "=VIP"],
            "opened": pd.array([1, 0, 1], dtype="int8"),
        }
    )
    for run in (csv_run, dataset_run):
        run.mkdir()
        run_folder.write_engagement_dataset(run, frame)  # then replaced by the CSV in csv_run
    run_folder.write_engagement(csv_run, frame)
    assert not run_folder.ENGAGEMENT_DATASET.path(csv_run).exists()
    assert run_folder.find_engagement(csv_run) == csv_run / "engagement.csv"
    assert run_folder.find_engagement(dataset_run) == dataset_run / "engagement.parquet"
    text = ["customer_id", "experiment_arm", "segment"]
    for run in (csv_run, dataset_run):
        assert run_folder.engagement_columns(run) == [*text, "opened"]
        assert run_folder.read_engagement(run, text=[*text, "opened"]).to_dict("list") == {
            **frame[text].to_dict("list"),
            "opened": ["1", "0", "1"],
        }
        typed = run_folder.read_engagement(run, ["opened", "customer_id"], text=["customer_id"])
        assert typed.columns.tolist() == ["customer_id", "opened"]
        assert typed["opened"].tolist() == [1, 0, 1]
        with pytest.raises(DataValidationError, match="missing column"):
            run_folder.read_engagement(run, ["clicked"])


def test_customer_copy_source_is_read_without_the_rows(tmp_path: Path):
    source = {"sha256": "ab" * 32, "settings": {"encoding": None}, "on_invalid": "error"}
    assert run_folder.customer_copy_source(tmp_path) is None
    frame = pd.DataFrame({"customer_id": ["C-1", "C-2"], "age": [30, 41]})
    run_folder.write_customer_copy(tmp_path, frame, source)
    assert run_folder.customer_copy_source(tmp_path) == source
    folder = tmp_path / "spark"
    copy = run_folder.CUSTOMERS_COPY.path(folder)
    copy.mkdir(parents=True)  # the form Spark writes: part files and _cpo_source.json
    frame.to_parquet(copy / "part-00000.parquet")
    (copy / "_cpo_source.json").write_text(json.dumps(source), encoding="utf-8")
    assert run_folder.customer_copy_source(folder) == source
    (copy / "_cpo_source.json").write_text("not json", encoding="utf-8")
    assert run_folder.customer_copy_source(folder) is None


def test_manifest_and_recorded_audit_head(tmp_path: Path):
    with pytest.raises(RunDirError, match="no manifest.json here"):
        read_manifest(tmp_path)
    head = AuditHead(entries=7, head_hash="ab" * 32)
    write_manifest(tmp_path, {"run_id": "r1", "safety": {"audit": head.as_record()}})
    manifest = read_manifest(tmp_path)
    assert recorded_audit_head(manifest) == head
    assert recorded_audit_head({}) == AuditHead()


# --- the source tree ------------------------------------------------------------


def _modules() -> dict[str, ast.Module]:
    """Every module of the cpo package by dotted name, parsed."""
    modules = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return modules


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_each_artifact_file_name_is_written_once_in_the_source():
    modules = _modules()
    where: dict[str, list[str]] = {item.name: [] for item in ARTIFACTS}
    for name, tree in modules.items():
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            literal = isinstance(node, ast.Constant) and id(node) not in docstrings
            if literal and node.value in where:
                where[node.value].append(name)
    assert {k: v for k, v in where.items() if v != ["cpo.run_folder"]} == {}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """cpo modules ``name`` imports at run time (anywhere; TYPE_CHECKING blocks excluded)."""
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node)
        for statement in node.body
        for child in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return {module for module in found if module in known and module != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, tree, set(modules)) for name, tree in modules.items()}


def test_no_stage_module_imports_the_pipeline():
    offenders = [
        name
        for name, imported in _graph().items()
        if name.split(".")[1:2] and name.split(".")[1] in STAGE_PACKAGES
        if "cpo.pipeline" in imported
    ]
    assert offenders == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path), ignoring a package's import of its own modules."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if target.startswith(node + ".") or node.startswith(target + "."):
                continue  # a package and its own modules
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_cpo_modules_import_each_other_without_a_cycle():
    assert _cycle(_graph()) is None


def test_the_cycle_check_finds_a_cycle():
    graph = {"cpo.a": {"cpo.b"}, "cpo.b": {"cpo.c"}, "cpo.c": {"cpo.a"}, "cpo.d": set()}
    assert _cycle(graph) == ["cpo.a", "cpo.b", "cpo.c", "cpo.a"]
    assert _cycle({"cpo.p": {"cpo.p.m"}, "cpo.p.m": {"cpo.p"}}) is None
