"""Build ``report.ipynb`` with nbformat and execute it offline with nbclient.

The notebook lives in the run folder and reads the artifacts next to it with
pandas (paths relative to the notebook), so a data scientist can re-run it,
change it, and check every number of the report against the files. It presents
saved results: the analysis is metrics.json and the moderator analysis is
moderators.json (no model is fitted again), the charts are the report's own
hand-written SVG (:mod:`cpo.reporting.charts`, no matplotlib), and the only raw
file it reads is engagement.csv, for the recount it shows. It is
executed by the ipykernel of the running interpreter (never a kernel spec that
happens to be installed for another Python), with a bounded timeout, and saved
with its outputs. An execution error is reported with the failing cell.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cpo import run_folder
from cpo.errors import StageError
from cpo.runfiles import atomic_open

#: Seconds each cell may run, and the kernel may take to start.
CELL_TIMEOUT_S = 120
STARTUP_TIMEOUT_S = 60
KERNEL_NAME = "python3"

_SETUP = """\
import json
from pathlib import Path

import pandas as pd
from IPython.display import SVG, display

from cpo.reporting import charts
from cpo.runfiles import read_csv

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)

RUN = Path(".")  # this notebook sits in the run folder
manifest = json.loads((RUN / "manifest.json").read_text(encoding="utf-8"))
metrics = json.loads((RUN / "metrics.json").read_text(encoding="utf-8"))
design = json.loads((RUN / "experiment_design.json").read_text(encoding="utf-8"))
variants = json.loads((RUN / "variants.json").read_text(encoding="utf-8"))["variants"]
engagement = read_csv(RUN / "engagement.csv", dtype={"customer_id": str})  # undoes formula escaping
PRIMARY = metrics["primary_metric"]
print(f"run {manifest['run_id']}: {len(engagement):,} engagement rows, "
      f"source {metrics['engagement_source']!r}, primary metric {PRIMARY}")
"""

_ARMS = """\
arms = pd.DataFrame(
    [
        {"arm": name, "tone": arm["tone"], **arm["counts"], **arm["metrics"]}
        for name, arm in metrics["arms"].items()
    ]
).set_index("arm")
arms
"""

_RECOUNT = """\
# Recount the arms from engagement.csv and compare with metrics.json.
def as_flag(column):
    if column.dtype == bool:
        return column.astype(int)
    text = column.astype(str).str.strip().str.lower()
    return text.isin(["1", "true", "yes", "t", "y"]).astype(int)

recipients = engagement[engagement["experiment_arm"] != "holdout"].copy()
for name in ("opened", "clicked", "converted"):
    recipients[name] = as_flag(recipients[name])
recount = recipients.groupby("experiment_arm").agg(
    sent=("customer_id", "size"),
    opened=("opened", "sum"),
    clicked=("clicked", "sum"),
    converted=("converted", "sum"),
)
if engagement.empty and (RUN / "engagement_counts.csv").is_file():
    # Imported as counts per arm (engagement.csv has no rows): recount those.
    counts = read_csv(RUN / "engagement_counts.csv", dtype={"experiment_arm": str})
    counts = counts[counts["experiment_arm"] != "holdout"]
    recount = counts.groupby("experiment_arm")[["sent", "opened", "clicked", "converted"]].sum()
comparison = recount.merge(
    arms[["sent", "opened", "clicked", "converted"]],
    left_index=True, right_index=True, how="outer", suffixes=("", "_metrics_json"),
)
comparison["sent_matches"] = comparison["sent"] == comparison["sent_metrics_json"]
comparison["clicked_matches"] = comparison["clicked"] == comparison["clicked_metrics_json"]
comparison
"""

_LIFTS = """\
lifts = pd.json_normalize(metrics["lift_analysis"])
columns = {
    "treatment_arm": "arm",
    "metric": "metric",
    "control_value": "control",
    "treatment_value": "treatment",
    "lift_absolute": "lift",
    "statistical_significance.confidence_interval.lower": "ci_lower",
    "statistical_significance.confidence_interval.upper": "ci_upper",
    "lift_percent": "lift_percent",
    "statistical_significance.test": "test",
    "statistical_significance.p_value": "p",
    "statistical_significance.p_value_adjusted": "p_adjusted",
    "statistical_significance.adjustment": "adjustment",
    "statistical_significance.significant": "significant",
    "bayesian.prob_beat_control": "prob_beat_control",
}
lift_table = lifts[[c for c in columns if c in lifts.columns]].rename(columns=columns)
lift_table
"""

_TRUTH = """\
# Simulated run: it checks the pipeline, not the customers, and supports no decision.
# The simulator's true effect (engagement_report.json, model.true_effects) beside each estimate.
path = RUN / "engagement_report.json"
report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
truth = (report.get("model") or {}).get("true_effects") or {}
true_rows = pd.DataFrame(
    [
        {"arm": arm, "metric": metric, "true_lift": values["lift_absolute"]}
        for arm, by_metric in (truth.get("arms") or {}).items()
        for metric, values in by_metric.items()
    ],
    columns=["arm", "metric", "true_lift"],
)
truth_check = lift_table.merge(true_rows, on=["arm", "metric"], how="left")
truth_check["interval_contains_truth"] = truth_check["ci_lower"].le(
    truth_check["true_lift"]
) & truth_check["ci_upper"].ge(truth_check["true_lift"])
shown = ["arm", "metric", "lift", "ci_lower", "ci_upper", "true_lift", "interval_contains_truth"]
truth_check[shown]
"""

_LIFT_CHART = """\
def lift_panel(rows, title, value="lift", lower="ci_lower", upper="ci_upper", label="arm",
               order=None):
    \"\"\"One forest panel: each row's estimate with its interval (None where missing).\"\"\"
    rows = rows.sort_values(order or label)
    rows = rows.astype(object).where(rows.notna(), None)
    return charts.ForestPanel(title, tuple(
        charts.ForestRow(str(r[label]), r[value], r[lower], r[upper]) for _, r in rows.iterrows()
    ))


metric_names = [PRIMARY] + [m for m in lift_table["metric"].unique() if m != PRIMARY]
display(SVG(charts.forest_chart(
    [lift_panel(lift_table[lift_table["metric"] == m], m + (" (primary)" if m == PRIMARY else ""))
     for m in metric_names],
    xlabel=f"lift (pp), {metrics['confidence_level']:.0%} Newcombe CI",
)))
"""

_SEGMENTS = """\
segment_rows = []
for entry in metrics["segment_breakdown"]:
    for record in entry["lift_analysis"]:
        if record["metric"] != PRIMARY:
            continue
        sig = record["statistical_significance"]
        segment_rows.append({
            "segment": entry["segment"],
            "n": entry["sample_size"],
            "best_arm": entry["best_performing_arm"],
            "arm": record["treatment_arm"],
            "control": record["control_value"],
            "treatment": record["treatment_value"],
            "lift": record["lift_absolute"],
            "ci_lower": sig["confidence_interval"]["lower"],
            "ci_upper": sig["confidence_interval"]["upper"],
            "p_adjusted_bh": sig["p_value_adjusted"],
        })
segments = pd.DataFrame(segment_rows)
segments
"""

_SEGMENT_CHART = """\
if len(segments):
    names = list(dict.fromkeys(segments["segment"]))
    display(SVG(charts.forest_chart(
        [lift_panel(segments[segments["segment"] == name], name) for name in names],
        xlabel=f"{PRIMARY} lift (pp) by segment, exploratory",
    )))
"""

_QUALITY = """\
srm = metrics.get("srm", {})
print("sample-ratio check:", srm.get("method"), "p =", srm.get("p_value"),
      "mismatch:", srm.get("mismatch"))
warnings_table = pd.DataFrame(metrics.get("warnings", []) + design.get("warnings", []))
warnings_table
"""

_SAFETY = """\
from cpo.audit import verify

recorded = manifest.get("safety", {}).get("audit", {})
check = verify(RUN / "safety_audit.jsonl", recorded.get("entries"), recorded.get("head_hash"))
print("audit chain:", "verified" if check.ok else "FAILED", "-", check.message())
audit = pd.read_json(RUN / "safety_audit.jsonl", lines=True)
screenings = audit[(audit["kind"] == "screening") & (audit["run_id"] == manifest["run_id"])]
latest = screenings.drop_duplicates("variant_id", keep="last").set_index("variant_id")
variant_ids = [v["variant_id"] for v in variants]
covered = sum(vid in latest.index for vid in variant_ids)
share = covered / len(variant_ids) if variant_ids else 0.0
print(f"coverage: {covered} of {len(variant_ids)} variants screened ({share:.0%})")
latest["status"].value_counts()
"""

_CITATIONS = """\
citations = pd.DataFrame(
    [
        {"variant_id": v["variant_id"], "segment": v["segment"], "tone": v["tone"], **c}
        for v in variants
        if v.get("status", "generated") != "failed"
        for c in v.get("citations", [])
    ]
)
if len(citations):
    cited = citations.groupby(["document_id", "title"]).size().sort_values(ascending=False)
    display(cited.rename("citations").to_frame())
else:
    print("no citations")
"""

_EXPLAIN = """\
# The moderator analysis as the analyze stage saved it (nothing is fitted here).
path = RUN / "moderators.json"
moderators = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
result = (moderators or {}).get("result")
if moderators is None:
    print("this run folder has no moderators.json (a run from an earlier cpo)")
elif result is None:
    print("moderator analysis not computed:", moderators.get("note"))
else:
    for line in result["narrative"]:
        print("-", line)
    ranking = pd.DataFrame(result["ranking"]).set_index("rank")
    display(ranking)
    bins = pd.DataFrame(result["bins"])
    display(bins[["attribute", "bin", "n_control", "n_treatment", "rate_control",
                  "rate_treatment", "lift_absolute", "lower", "upper"]])
    terms = pd.DataFrame(result["regression"]["terms"])
    if len(terms):
        display(terms.set_index("term"))
"""

_EXPLAIN_CHART = """\
if result is not None:
    display(SVG(charts.forest_chart(
        [lift_panel(bins[bins["attribute"] == a["key"]], a["key"], value="lift_absolute",
                    lower="lower", upper="upper", label="bin", order="order")
         for a in result["attributes"]],
        xlabel="treatment - control (pp) by attribute bin, exploratory",
    )))
"""


def _truth_cells() -> list[nbformat.NotebookNode]:
    """A simulated run's check: estimates against the simulator's true effects."""
    return [
        new_markdown_cell(
            "### Estimates against the simulator's truth\n\nThe engagement was simulated, so "
            "this run checks the pipeline, not the customers: it names no message to adopt or "
            "avoid. Each estimate's interval should contain the true effect about as often as "
            "its confidence level says."
        ),
        new_code_cell(_TRUTH),
    ]


def build_notebook(run_id: str, simulated: bool) -> nbformat.NotebookNode:
    """The report notebook (not yet executed)."""
    banner = (
        "\n\n**SIMULATED DATA**: the engagement in this run was simulated, not measured."
        if simulated
        else ""
    )
    cells = [
        new_markdown_cell(
            f"# Campaign report notebook\n\nRun `{run_id}`. This notebook reproduces the key "
            "tables and charts of `report.html` from the artifacts in this folder; run it "
            f"again with *Restart & Run All*.{banner}"
        ),
        new_code_cell(_SETUP),
        new_markdown_cell("## Results by arm\n\nCounts and rates per arm from `metrics.json`."),
        new_code_cell(_ARMS),
        new_markdown_cell("Recount from `engagement.csv` as a check on the analysis."),
        new_code_cell(_RECOUNT),
        new_markdown_cell(
            "## Lift against control\n\nNewcombe intervals for the difference; p-values "
            "adjusted by Holm (primary metric) or Benjamini–Hochberg (secondary)."
        ),
        new_code_cell(_LIFTS),
        *(_truth_cells() if simulated else []),
        new_code_cell(_LIFT_CHART),
        new_markdown_cell("## Segment breakdown (exploratory)"),
        new_code_cell(_SEGMENTS),
        new_code_cell(_SEGMENT_CHART),
        new_markdown_cell("## Data quality: sample-ratio check and warnings"),
        new_code_cell(_QUALITY),
        new_markdown_cell("## Safety audit: chain verification and coverage"),
        new_code_cell(_SAFETY),
        new_markdown_cell("## Citations"),
        new_code_cell(_CITATIONS),
        new_markdown_cell(
            "## Explainability (exploratory)\n\nLift by attribute bin and the treatment × "
            "attribute logistic regression, as the analysis saved them in `moderators.json`."
        ),
        new_code_cell(_EXPLAIN),
        new_code_cell(_EXPLAIN_CHART),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def _kernel_manager_class(ipc_dir: str | None) -> type:
    """A kernel manager class that always starts this interpreter's ipykernel.

    An empty kernel search path leaves only ipykernel's built-in ("native")
    spec, whose command is ``sys.executable -m ipykernel_launcher``: a user's
    own ``python3`` kernel spec for another Python cannot hijack execution.
    On POSIX the kernel talks over Unix sockets in ``ipc_dir`` (private to
    this process) rather than unencrypted TCP on localhost.
    """
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from traitlets import default

    class ThisPythonKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _default_specs(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc" if ipc_dir else "tcp"

        @default("ip")
        def _default_ip(self) -> str:
            return os.path.join(ipc_dir, "kernel") if ipc_dir else "127.0.0.1"

    return ThisPythonKernelManager


def execute_notebook(notebook: nbformat.NotebookNode, run_dir: Path) -> str | None:
    """Run every cell in ``run_dir``, keeping outputs in ``notebook``.

    Returns:
        None on success, else the last line of the error of the failing cell
        (execution stops there; the outputs up to it are kept).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    with tempfile.TemporaryDirectory(prefix="cpo-kernel-") as ipc_dir:
        client = NotebookClient(
            notebook,
            kernel_manager_class=_kernel_manager_class(ipc_dir if os.name == "posix" else None),
            timeout=CELL_TIMEOUT_S,
            startup_timeout=STARTUP_TIMEOUT_S,
            kernel_name=KERNEL_NAME,
            allow_errors=False,
            resources={"metadata": {"path": str(run_dir)}},
        )
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError) as exc:
            text = str(exc).strip()
            return text.splitlines()[-1] if text else type(exc).__name__
    return None


def write_notebook(run_dir: Path, run_id: str, simulated: bool, *, execute: bool = True) -> Path:
    """Build, execute (by default) and save ``report.ipynb`` in ``run_dir``.

    Raises:
        StageError: a cell failed or timed out; the notebook is saved with the
            error output so the failing cell can be inspected.
    """
    notebook = build_notebook(run_id, simulated)
    error = execute_notebook(notebook, run_dir) if execute else None
    target = run_dir / run_folder.REPORT_NOTEBOOK.name
    with atomic_open(target) as handle:
        nbformat.write(notebook, handle)
    if error:
        raise StageError(
            "report",
            f"{target}: a notebook cell failed: {error}",
            hint="report.html and report.pdf were written; open report.ipynb to see the "
            "failing cell, then run `cpo report RUN_DIR` again",
        )
    return target
