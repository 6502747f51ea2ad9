"""Build ``report.ipynb`` with nbformat and execute it offline with nbclient.

The notebook lives in the run folder and reads the artifacts next to it with the
standard library (paths relative to the notebook; the recount streams
engagement.csv counting each distinct arm and flags once; tables are shown by a small
``Table`` class defined in its first cell, so the kernel imports neither pandas
nor NumPy and starts fast), so a data scientist can re-run it,
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
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cpo import run_folder
from cpo.errors import StageError
from cpo.runfiles import atomic_open

#: Seconds each cell may run, and the kernel may take to start.
CELL_TIMEOUT_S = 120
STARTUP_TIMEOUT_S = 60
KERNEL_NAME = "python3"

T = TypeVar("T")

_SETUP = """\
import csv
import json
import re
from collections import Counter
from html import escape
from operator import itemgetter
from pathlib import Path

from IPython.display import SVG, display

from cpo.reporting import charts

RUN = Path(".")  # this notebook sits in the run folder
manifest = json.loads((RUN / "manifest.json").read_text(encoding="utf-8"))
metrics = json.loads((RUN / "metrics.json").read_text(encoding="utf-8"))
design = json.loads((RUN / "experiment_design.json").read_text(encoding="utf-8"))
variants = json.loads((RUN / "variants.json").read_text(encoding="utf-8"))["variants"]
PRIMARY = metrics["primary_metric"]


class Table:
    \"\"\"Rows (dicts) shown as an HTML table in Jupyter and as plain text elsewhere.\"\"\"

    def __init__(self, rows, columns=None):
        self.rows = list(rows)
        self.columns = list(columns or dict.fromkeys(k for row in self.rows for k in row))

    def where(self, **wanted):
        \"\"\"The rows whose columns equal the given values.\"\"\"
        keep = [r for r in self.rows if all(r.get(k) == v for k, v in wanted.items())]
        return Table(keep, self.columns)

    def column(self, name):
        return [row.get(name) for row in self.rows]

    @staticmethod
    def _text(value):
        if isinstance(value, float):
            return f"{value:.6g}"
        return "" if value is None else str(value)

    def _repr_html_(self):
        head = "".join(f"<th>{escape(str(c))}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(self._text(r.get(c)))}</td>" for c in self.columns)
            + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self):
        lines = [self.columns] + [[self._text(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(self.columns))]
        return "\\n".join(
            "  ".join(str(v).ljust(w) for v, w in zip(line, widths)) for line in lines
        )


ESCAPED = re.compile(r"^''*[=+\\-@\\t\\r]")  # cpo prefixes a quote to such cells


def unescape(cell):
    \"\"\"A cell of one of cpo's CSV artifacts without the formula escaping.\"\"\"
    return cell[1:] if ESCAPED.match(cell or "") else cell


def count_rows(name, columns):
    \"\"\"How many rows of a CSV artifact have each combination of values in ``columns``.

    Counted as the file streams by (a million rows in about a second, little memory):
    there are few distinct combinations, so they are unescaped afterwards. A run on
    the Spark engine has a Parquet dataset (a folder) instead: counted by pyarrow.
    \"\"\"
    dataset = (RUN / name).with_suffix(".parquet")
    if not (RUN / name).is_file() and dataset.is_dir():
        import pyarrow.dataset as ds

        table = ds.dataset(str(dataset), format="parquet").to_table(columns=list(columns))
        grouped = table.group_by(list(columns)).aggregate([([], "count_all")]).to_pylist()
        return Counter(
            {tuple("" if r[c] is None else str(r[c]) for c in columns): r["count_all"]
             for r in grouped}
        )
    with open(RUN / name, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        pick = itemgetter(*(header.index(c) for c in columns))  # two columns or more
        found = Counter(map(pick, reader))
    combined = Counter()
    for values, n in found.items():
        combined[tuple(unescape(v) for v in values)] += n
    return combined


print(f"run {manifest['run_id']}: source {metrics['engagement_source']!r}, "
      f"primary metric {PRIMARY}")
"""

_ARMS = """\
arms = Table(
    {"arm": name, "tone": arm["tone"], **arm["counts"], **arm["metrics"]}
    for name, arm in metrics["arms"].items()
)
arms
"""

_RECOUNT = """\
# Recount the arms from engagement.csv and compare with metrics.json.
FLAGS = ("opened", "clicked", "converted")
YES = {"1", "true", "yes", "t", "y"}
recount, rows = {}, 0
for (arm, *flags), n in count_rows("engagement.csv", ("experiment_arm", *FLAGS)).items():
    rows += n
    if arm == "holdout":
        continue
    counts = recount.setdefault(arm, Counter(sent=0))
    counts["sent"] += n
    for name, flag in zip(FLAGS, flags):
        counts[name] += n * ((flag or "").strip().lower() in YES)
if not rows and (RUN / "engagement_counts.csv").is_file():
    # Imported as counts per arm (engagement.csv has no rows): recount those.
    for (arm, *values), n in count_rows(
        "engagement_counts.csv", ("experiment_arm", "sent", *FLAGS)
    ).items():
        if arm != "holdout":
            counts = recount.setdefault(arm, Counter())
            for name, value in zip(("sent", *FLAGS), values):
                counts[name] += n * int(float(value))
saved = {row["arm"]: row for row in arms.rows}
comparison = Table(
    {
        "arm": arm,
        **{name: recount.get(arm, {}).get(name) for name in ("sent", *FLAGS)},
        **{f"{name}_metrics_json": saved.get(arm, {}).get(name) for name in ("sent", *FLAGS)},
        "sent_matches": recount.get(arm, {}).get("sent") == saved.get(arm, {}).get("sent"),
        "clicked_matches": recount.get(arm, {}).get("clicked")
        == saved.get(arm, {}).get("clicked"),
    }
    for arm in sorted(set(recount) | set(saved))
)
display(comparison)
print(f"{rows:,} rows in engagement.csv")
"""

_LIFTS = """\
def lift_row(record):
    \"\"\"One lift record of metrics.json as a flat row.\"\"\"
    sig = record.get("statistical_significance") or {}
    interval = sig.get("confidence_interval") or {}
    return {
        "arm": record["treatment_arm"],
        "metric": record["metric"],
        "control": record.get("control_value"),
        "treatment": record.get("treatment_value"),
        "lift": record.get("lift_absolute"),
        "ci_lower": interval.get("lower"),
        "ci_upper": interval.get("upper"),
        "lift_percent": record.get("lift_percent"),
        "test": sig.get("test"),
        "p": sig.get("p_value"),
        "p_adjusted": sig.get("p_value_adjusted"),
        "adjustment": sig.get("adjustment"),
        "significant": sig.get("significant"),
        "prob_beat_control": (record.get("bayesian") or {}).get("prob_beat_control"),
    }


lift_table = Table(lift_row(record) for record in metrics["lift_analysis"])
lift_table
"""

_CUPED = """\
section = metrics.get("regression_adjustment")
if section is None:
    print("metrics.json has no regression adjustment (analysed before it existed)")
else:
    why = section["reason"]
    print(section["decision"] + (f" ({why})" if why and why not in section["decision"] else ""))
    cuped_table = Table(
        {
            "metric": c["metric"],
            "arm": c["treatment_arm"],
            "covariates": ", ".join(c["covariates"]),
            "unadjusted": c["unadjusted"]["difference"],
            "unadjusted_lower": c["unadjusted"]["lower"],
            "unadjusted_upper": c["unadjusted"]["upper"],
            "adjusted": c["adjusted"]["difference"],
            "adjusted_lower": c["adjusted"]["lower"],
            "adjusted_upper": c["adjusted"]["upper"],
            "relative_lift": c["relative_lift"],
            "p_adjusted": c["p_value_adjusted"],
            "significant": c["significant"],
            "variance_reduction": c["variance_reduction"],
        }
        for c in section["comparisons"]
    )
    display(cuped_table)
"""

_TRUTH = """\
# Simulated run: it checks the pipeline, not the customers, and supports no decision.
# The simulator's true effect (engagement_report.json, model.true_effects) beside each estimate.
path = RUN / "engagement_report.json"
report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
truth = ((report.get("model") or {}).get("true_effects") or {}).get("arms") or {}


def truth_row(row):
    \"\"\"One estimate with the simulator's true lift and whether its interval contains it.\"\"\"
    true_lift = (truth.get(row["arm"]) or {}).get(row["metric"], {}).get("lift_absolute")
    known = None not in (true_lift, row["ci_lower"], row["ci_upper"])
    return {
        **{k: row[k] for k in ("arm", "metric", "lift", "ci_lower", "ci_upper")},
        "true_lift": true_lift,
        "interval_contains_truth": (
            row["ci_lower"] <= true_lift <= row["ci_upper"] if known else None
        ),
    }


truth_check = Table(truth_row(row) for row in lift_table.rows)
truth_check
"""

_LIFT_CHART = """\
def lift_panel(rows, title, value="lift", lower="ci_lower", upper="ci_upper", label="arm",
               order=None):
    \"\"\"One forest panel: each row's estimate with its interval (None where missing).\"\"\"
    rows = sorted(rows, key=lambda r: r[order or label])
    return charts.ForestPanel(title, tuple(
        charts.ForestRow(str(r[label]), r[value], r[lower], r[upper]) for r in rows
    ))


metric_names = [PRIMARY] + [m for m in dict.fromkeys(lift_table.column("metric")) if m != PRIMARY]
display(SVG(charts.forest_chart(
    [lift_panel(lift_table.where(metric=m).rows, m + (" (primary)" if m == PRIMARY else ""))
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
segments = Table(segment_rows)
segments
"""

_SEGMENT_CHART = """\
if segments.rows:
    names = list(dict.fromkeys(segments.column("segment")))
    display(SVG(charts.forest_chart(
        [lift_panel(segments.where(segment=name).rows, name) for name in names],
        xlabel=f"{PRIMARY} lift (pp) by segment, exploratory",
    )))
"""

_QUALITY = """\
srm = metrics.get("srm", {})
print("sample-ratio check:", srm.get("method"), "p =", srm.get("p_value"),
      "mismatch:", srm.get("mismatch"))
warnings_table = Table(metrics.get("warnings", []) + design.get("warnings", []))
warnings_table
"""

_SAFETY = """\
from cpo.audit import verify

recorded = manifest.get("safety", {}).get("audit", {})
check = verify(RUN / "safety_audit.jsonl", recorded.get("entries"), recorded.get("head_hash"))
print("audit chain:", "verified" if check.ok else "FAILED", "-", check.message())
with open(RUN / "safety_audit.jsonl", encoding="utf-8") as handle:
    audit = [json.loads(line) for line in handle if line.strip()]
latest = {  # the last screening of each variant in this run
    entry["variant_id"]: entry
    for entry in audit
    if entry.get("kind") == "screening" and entry.get("run_id") == manifest["run_id"]
}
variant_ids = [v["variant_id"] for v in variants]
covered = sum(vid in latest for vid in variant_ids)
share = covered / len(variant_ids) if variant_ids else 0.0
print(f"coverage: {covered} of {len(variant_ids)} variants screened ({share:.0%})")
outcomes = Counter(entry.get("status") for entry in latest.values())
Table({"status": status, "variants": n} for status, n in outcomes.most_common())
"""

_CITATIONS = """\
cited = Counter(
    (c.get("document_id"), c.get("title"))
    for v in variants
    if v.get("status", "generated") != "failed"
    for c in v.get("citations", [])
)
if cited:
    display(Table(
        {"document_id": doc, "title": title, "citations": n}
        for (doc, title), n in cited.most_common()
    ))
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
    display(Table(result["ranking"]))
    bins = Table(result["bins"])
    display(Table(bins.rows, ["attribute", "bin", "n_control", "n_treatment", "rate_control",
                              "rate_treatment", "lift_absolute", "lower", "upper"]))
    terms = Table(result["regression"]["terms"])
    if terms.rows:
        display(terms)
"""

_EXPLAIN_CHART = """\
if result is not None:
    display(SVG(charts.forest_chart(
        [lift_panel(bins.where(attribute=a["key"]).rows, a["key"], value="lift_absolute",
                    lower="lower", upper="upper", label="bin", order="order")
         for a in result["attributes"]],
        xlabel="treatment - control (pp) by attribute bin, exploratory",
    )))
"""


_WAVES = """\
# Adaptive waves: each wave's allocation (waves.json) and the wave-stratified decision
# and the holdout's incremental lift (metrics.json), as the run recorded them.
plan = json.loads((RUN / "waves.json").read_text(encoding="utf-8"))
section = metrics["waves"]
arms = list(plan["allocations"][0]["shares"])
display(Table(
    {"wave": a["wave"], "method": a["method"], "customers": a["customers"],
     "holdout": a["holdout"], **{arm: round(a["shares"][arm], 3) for arm in arms}}
    for a in plan["allocations"]
))
display(SVG(charts.stacked_bar_chart(
    [f"wave {a['wave']}" for a in plan["allocations"]], arms,
    [[a["shares"][arm] for arm in arms] for a in plan["allocations"]],
    xlabel="share of the wave's recipients",
)))
display(Table(section["comparisons"], ["arm", "difference", "ci_lower", "ci_upper",
                                       "p_value_adjusted", "significant", "pooled_difference"]))
if section["holdout"] is not None:
    display(Table([section["holdout"]], ["mailed", "holdout", "mailed_rate", "holdout_rate",
                                         "difference", "ci_lower", "ci_upper", "p_value"]))
"""


def _wave_cells() -> list[nbformat.NotebookNode]:
    """A run of adaptive waves: allocations, the stratified decision and the holdout."""
    return [
        new_markdown_cell(
            "## Adaptive waves\n\nWave 1 used the planned allocation; later waves were "
            "allocated by top-two Thompson sampling on the primary metric. The decision uses the "
            "per-wave differences weighted by wave size (pooling waves would be biased); the "
            "holdout, never mailed, gives the whole program's incremental lift."
        ),
        new_code_cell(_WAVES),
    ]


_MONITORING = """\
# Monitoring: each look's always-valid p-value and confidence sequence (monitoring.json,
# the same history as metrics.json's "sequential" section), for every metric and arm.
history = json.loads((RUN / "monitoring.json").read_text(encoding="utf-8"))
looks = Table(
    {"look": look["look"], "computed_at": look["computed_at"], "recipients": look["recipients"],
     "source": look["engagement_source"], **c}
    for look in history["looks"] for c in look["comparisons"]
)
display(looks.where(metric=PRIMARY))
arms = [c["treatment_arm"] for c in history["looks"][-1]["comparisons"] if c["metric"] == PRIMARY]
display(SVG(charts.forest_chart(
    [charts.ForestPanel(arm, tuple(
        charts.ForestRow(f"look {r['look']}", r["estimate"], r["cs_lower"], r["cs_upper"])
        for r in looks.where(metric=PRIMARY, treatment_arm=arm).rows
    )) for arm in arms],
    xlabel="treatment - control (pp), confidence sequence",
)))
"""


def _monitoring_cells() -> list[nbformat.NotebookNode]:
    """A monitored run (analysis.sequential): the look history and its confidence sequences."""
    return [
        new_markdown_cell(
            "## Monitoring (always-valid)\n\nEach analysis of the run is a look. The "
            "always-valid p-value (running minimum over looks) and the confidence sequence "
            "(running intersection) of the mixture SPRT stay valid however often they are read."
        ),
        new_code_cell(_MONITORING),
    ]


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
        new_markdown_cell(
            "## Adjusted for customers' history (CUPED)\n\nEach lift adjusted for "
            "pre-experiment covariates (Lin 2013 regression, HC2 errors) beside the unadjusted "
            "one, and which of the two the decision uses, as `metrics.json` recorded them."
        ),
        new_code_cell(_CUPED),
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


class NotebookKernel:
    """This interpreter's ipykernel, started in the run folder before the notebook is built.

    Starting a kernel (a new Python process importing ipykernel) takes about a
    second; a kernel started early does it while the run's other stages work.
    Every call to the kernel goes through one thread, since jupyter_client's
    asyncio loop belongs to the thread that started the kernel: start it with
    :meth:`start`, run the notebook with :meth:`submit`, stop it with :meth:`close`.

    Args:
        run_dir: The run folder, the kernel's working directory (the notebook
            reads the artifacts next to it).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cpo-kernel")
        self._ipc_dir = tempfile.mkdtemp(prefix="cpo-kernel-")
        self._manager: Future[Any] | None = None
        self._closing = threading.Event()

    def start(self) -> NotebookKernel:
        """Start the kernel in the background (returns at once)."""
        self._manager = self._thread.submit(self._start)
        return self

    def _start(self) -> Any:
        from jupyter_core.utils import run_sync

        # A worker started with the command may come before the pipeline creates the
        # folder; a run that fails first closes the kernel while it waits.
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.run_dir.is_dir():
            if self._closing.wait(0.05) or time.monotonic() > deadline:
                raise RuntimeError(f"{self.run_dir}: no run folder to start the kernel in")
        ipc_dir = self._ipc_dir if os.name == "posix" else None
        manager = _kernel_manager_class(ipc_dir)(kernel_name=KERNEL_NAME)
        # The arguments nbclient would start its own kernel with (no history file).
        run_sync(manager.start_kernel)(
            extra_arguments=["--HistoryManager.hist_file=:memory:"], cwd=str(self.run_dir)
        )
        return manager

    def manager(self) -> Any:
        """The started kernel's manager (waits for the start; call on the kernel's thread)."""
        if self._manager is None:
            self.start()
        assert self._manager is not None
        return self._manager.result(timeout=STARTUP_TIMEOUT_S)

    def submit(self, call: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``call(*args)`` on the kernel's thread."""
        return self._thread.submit(call, *args)

    def close(self) -> None:
        """Shut the kernel down (if it still runs) and remove its socket folder."""
        self._closing.set()
        try:
            self._thread.submit(self._stop).result(timeout=STARTUP_TIMEOUT_S)
        finally:
            self._thread.shutdown(wait=False)
            shutil.rmtree(self._ipc_dir, ignore_errors=True)

    def _stop(self) -> None:
        from jupyter_core.utils import run_sync

        if self._manager is None:
            return
        try:
            manager = self._manager.result(timeout=STARTUP_TIMEOUT_S)
        except Exception:  # a kernel that never started has nothing to stop
            return
        if run_sync(manager.is_alive)():
            run_sync(manager.shutdown_kernel)(now=True)
        run_sync(manager.cleanup_resources)()


def execute_notebook(
    notebook: nbformat.NotebookNode, run_dir: Path, kernel: NotebookKernel | None = None
) -> str | None:
    """Run every cell in ``run_dir``, keeping outputs in ``notebook``.

    Args:
        notebook: The notebook; its cells get their outputs.
        run_dir: The run folder (the kernel's working directory).
        kernel: A kernel started earlier in ``run_dir`` (call this on its
            thread: :meth:`NotebookKernel.submit`); None starts one here. Either
            way the kernel is shut down afterwards.

    Returns:
        None on success, else the last line of the error of the failing cell
        (execution stops there; the outputs up to it are kept).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    with tempfile.TemporaryDirectory(prefix="cpo-kernel-") as ipc_dir:
        client = NotebookClient(
            notebook,
            km=kernel.manager() if kernel is not None else None,
            kernel_manager_class=_kernel_manager_class(ipc_dir if os.name == "posix" else None),
            timeout=CELL_TIMEOUT_S,
            startup_timeout=STARTUP_TIMEOUT_S,
            kernel_name=KERNEL_NAME,
            allow_errors=False,
            resources={"metadata": {"path": str(run_dir)}},
            shutdown_kernel="immediate",  # its work is done; a graceful stop only waits
        )
        try:
            client.execute(cleanup_kc=True)
        except (CellExecutionError, CellTimeoutError) as exc:
            text = str(exc).strip()
            return text.splitlines()[-1] if text else type(exc).__name__
    return None


def write_notebook(
    run_dir: Path,
    run_id: str,
    simulated: bool,
    *,
    execute: bool = True,
    kernel: NotebookKernel | None = None,
) -> Path:
    """Build, execute (by default) and save ``report.ipynb`` in ``run_dir``.

    ``kernel``: a kernel started earlier in ``run_dir`` (see :func:`execute_notebook`).

    Raises:
        StageError: a cell failed or timed out; the notebook is saved with the
            error output so the failing cell can be inspected.
    """
    notebook = build_notebook(run_id, simulated)
    if run_folder.WAVES.path(run_dir).is_file():
        notebook.cells.extend(_wave_cells())
    if run_folder.MONITORING.path(run_dir).is_file():
        notebook.cells.extend(_monitoring_cells())
    error = execute_notebook(notebook, run_dir, kernel) if execute else None
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
