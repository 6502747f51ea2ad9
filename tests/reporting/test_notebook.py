"""report.ipynb: built with nbformat, executed offline, outputs saved, no errors."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from cpo.errors import StageError
from cpo.reporting import notebook as nb_module


def test_notebook_executed_without_errors(sim_report) -> None:
    notebook = nbformat.read(sim_report.run_dir / "report.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert len(code) >= 10
    assert all(c.execution_count for c in code), "every cell ran"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    images = [o for o in outputs if "image/svg+xml" in o.get("data", {})]
    assert len(images) >= 3, "lift, segment and explainability charts"
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "audit chain: verified" in text
    assert "Exploratory analysis of click rate" in text


def test_notebook_recount_matches_metrics_json(sim_report) -> None:
    notebook = nbformat.read(sim_report.run_dir / "report.ipynb", as_version=4)
    recount = next(c for c in notebook.cells if "sent_matches" in c.source)
    html = recount.outputs[0]["data"]["text/html"]
    assert "False" not in html and html.count("True") >= 8


def test_notebook_presents_saved_results_without_fitting(fixture_run: Path) -> None:
    """Executed in a kernel, the notebook never loads a model library: nothing is refitted.

    Nor pandas, NumPy or pyarrow: it presents saved results with the standard
    library, so its kernel starts fast.
    """
    notebook = nb_module.build_notebook("fixture", simulated=True)
    heavy = ("statsmodels", "scipy", "sklearn", "matplotlib", "pandas", "numpy", "pyarrow")
    notebook.cells.append(
        new_code_cell(f"import sys\nprint(sorted(m for m in {heavy!r} if m in sys.modules))")
    )
    assert nb_module.execute_notebook(notebook, fixture_run) is None
    assert "explain_moderators" not in "".join(c.source for c in notebook.cells)
    assert notebook.cells[-1].outputs[0]["text"].strip() == "[]"


def test_failing_cell_is_reported_and_saved(tmp_path: Path, monkeypatch) -> None:
    def broken(run_id: str, simulated: bool):
        notebook = nbformat.v4.new_notebook(cells=[new_code_cell("1 / 0")])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        return notebook

    monkeypatch.setattr(nb_module, "build_notebook", broken)
    with pytest.raises(StageError, match="ZeroDivisionError"):
        nb_module.write_notebook(tmp_path, "run", False)
    saved = nbformat.read(tmp_path / "report.ipynb", as_version=4)
    assert saved.cells[0].outputs[0].output_type == "error"


def test_kernel_is_this_interpreter_even_with_a_broken_user_spec(
    tmp_path: Path, monkeypatch
) -> None:
    # A user's own "python3" kernel spec (here: for a Python that does not exist)
    # takes precedence for plain nbclient; the report must still run in this Python.
    import json
    import sys

    spec_dir = tmp_path / "data" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    "/nonexistent/python",
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "Broken",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "0")
    notebook = nbformat.v4.new_notebook(cells=[new_code_cell("import sys; print(sys.executable)")])
    assert nb_module.execute_notebook(notebook, tmp_path) is None
    assert notebook.cells[0].outputs[0].text.strip() == sys.executable
