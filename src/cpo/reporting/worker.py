"""Render a run's reports in a process started when the run starts.

The report's fixed costs do not depend on the run: importing WeasyPrint, Jinja2
and nbclient, laying out a first page (fonts, the user-agent stylesheet),
compiling the templates and starting the notebook's kernel take several CPU
seconds. :class:`ReportWorker` starts ``python -m cpo.reporting.worker RUN_DIR``
when the pipeline starts, so that this work runs on another core while the
segment ... analyze stages run here; the report stage then sends the live
manifest and gets the :class:`~cpo.reporting.render.ReportResult` back.

Protocol (one request, one reply, JSON lines): the parent writes
``{"manifest": {...}, "metrics": [...]}`` (the live manifest and the metric
catalog, which may hold metrics registered at run time) to the worker's stdin
and closes it; the worker answers
on its stdout with ``{"ok": true, "result": {...}}`` or ``{"ok": false,
"error": {...}}`` (a :class:`~cpo.errors.CpoError` raised while rendering,
re-raised as such here) or ``{"ok": false, "crash": "..."}`` (anything else:
the report stage then renders in its own process, as without a worker). The
worker's own stdout is moved to stderr first, so nothing the kernel or a
library prints can corrupt the reply. End of input without a request (the run
stopped before its report) makes the worker stop its kernel and exit.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cpo.errors import CpoError, StageError

if TYPE_CHECKING:
    from cpo.reporting.notebook import NotebookKernel

#: Seconds the parent waits for a worker to exit after its stdin closed.
EXIT_TIMEOUT_S = 10


class WorkerUnavailable(Exception):
    """The worker died or answered nonsense; render in this process instead."""


class ReportWorker:
    """The parent's handle on a report worker process (see the module docstring).

    Args:
        run_dir: The run folder whose reports the worker will write.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._asked = False

    def start(self) -> ReportWorker:
        """Start the worker process (returns at once; it warms up on its own).

        A worker that cannot be started (the interpreter cannot be run again,
        e.g. no permission) leaves none: the report stage renders in this process.
        """
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "cpo.reporting.worker", str(self.run_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=_worker_environment(),
            )
        except OSError:
            self._process = None
        return self

    def render(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Have the worker write the three reports; return its ReportResult fields.

        Raises:
            CpoError: rendering failed the way it would have in this process
                (e.g. a notebook cell failed); the same class, message and hint.
            WorkerUnavailable: the worker is gone or broke; nothing was raised
                by rendering itself.
        """
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise WorkerUnavailable("the report worker was not started")
        self._asked = True
        from cpo.experiment.catalog import catalog_snapshot

        request = {"manifest": manifest, "metrics": catalog_snapshot()}
        try:
            process.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            process.stdin.close()
            line = process.stdout.readline()
        except OSError as exc:
            raise WorkerUnavailable(f"the report worker is gone ({exc})") from None
        return _answer(line)

    def close(self) -> None:
        """Stop the worker: wait for it after a report, else stop it now; kill if it hangs.

        A worker that was never asked (the run failed or paused before its report)
        is terminated at once; it stops its notebook kernel on the way out.
        """
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if not self._asked:
                process.terminate()
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()
            process.wait(timeout=EXIT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()


@contextlib.contextmanager
def early_report_worker(run_dir: Path | None, *, pauses: bool) -> Iterator[ReportWorker | None]:
    """A report worker for ``run_dir``, started now and closed on leaving the block.

    Args:
        run_dir: The run folder (it may not exist yet: the kernel waits for it).
        pauses: The run stops before its report (``--await-engagement``): no worker.

    Yields:
        The started worker, or None when there is nothing to start.
    """
    worker = None if pauses or run_dir is None else ReportWorker(run_dir).start()
    try:
        yield worker
    finally:
        if worker is not None:
            worker.close()


def _worker_environment() -> dict[str, str]:
    """This environment, with this copy of cpo importable first (a source checkout)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def _answer(line: bytes) -> dict[str, Any]:
    """The result in a worker's reply; raises what the reply says went wrong."""
    try:
        reply = json.loads(line)
    except ValueError:
        raise WorkerUnavailable("the report worker stopped without an answer") from None
    if not isinstance(reply, dict):
        raise WorkerUnavailable("the report worker answered something else than a reply")
    if reply.get("ok"):
        return dict(reply["result"])
    error = reply.get("error")
    if isinstance(error, dict):
        raise _rebuilt(error)
    raise WorkerUnavailable(str(reply.get("crash") or "the report worker failed"))


def _rebuilt(error: dict[str, Any]) -> CpoError:
    """The CpoError a worker reported, as the same class with the same message and hint."""
    import cpo.errors

    cls = getattr(cpo.errors, str(error.get("type")), None)
    message, hint = str(error.get("message", "")), error.get("hint")
    sensitive = [str(value) for value in error.get("sensitive") or ()]
    stage = error.get("stage")
    if stage is not None:
        # StageError prefixes its message with the stage; the reported one has it already.
        message = message.removeprefix(f"stage '{stage}' failed: ")
        return StageError(str(stage), message, hint, sensitive)
    if isinstance(cls, type) and issubclass(cls, CpoError) and cls is not StageError:
        return cls(message, hint, sensitive)
    return CpoError(message, hint, sensitive)


# ---------------------------------------------------------------- the worker


def _warm_up() -> None:
    """Import the renderers and lay out a small document with the report's fonts."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        import weasyprint

    from cpo.reporting import html, render  # noqa: F401 - imports the renderers

    env = html.environment()
    for name in ("report.html.j2", "report_print.html.j2"):
        env.get_template(name)  # compiled once; html.environment() caches its templates
    sample = (
        "<style>html{font-family:'Liberation Sans',Arial,sans-serif;font-size:9pt}"
        ".m{font-family:'Liberation Mono',monospace}</style>"
        "<h1>cpo</h1><p><b>warm</b> <i>up</i> <span class=m>0</span></p>"
        "<table><tr><th>a</th><td>1</td></tr></table>"
    )
    weasyprint.HTML(string=sample).write_pdf()


def _error_reply(exc: CpoError) -> dict[str, Any]:
    return {
        "ok": False,
        "error": {
            "type": type(exc).__name__,
            "message": exc.message,
            "hint": exc.hint,
            "stage": getattr(exc, "stage", None),
            "sensitive": list(exc.sensitive),
        },
    }


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    """Entry point of ``python -m cpo.reporting.worker RUN_DIR``."""
    signal.signal(signal.SIGTERM, _exit_on_signal)  # so that the kernel is stopped too
    reply_to: IO[str] = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever else writes to stdout goes to stderr
    run_dir = Path(argv[1])
    from cpo.reporting.notebook import NotebookKernel

    kernel = NotebookKernel(run_dir).start()
    reply = None
    try:
        with contextlib.suppress(Exception):  # rendering meets (and reports) the same problem
            _warm_up()
        # What is loaded now lives until the worker exits: the garbage collector
        # need not scan it again each time rendering the reports triggers it.
        gc.freeze()
        line = sys.stdin.readline()
        if line.strip():
            reply = _serve(run_dir, line, kernel)
    finally:
        kernel.close()
    if reply is not None:
        reply_to.write(json.dumps(reply) + "\n")
        reply_to.flush()
    return 0


def _serve(run_dir: Path, line: str, kernel: NotebookKernel) -> dict[str, Any]:
    """Render the reports for one request line; the reply to send."""
    from cpo.experiment.catalog import adopt_catalog
    from cpo.reporting.render import render_report

    try:
        request = json.loads(line)
        adopt_catalog(request["metrics"])  # metrics the parent registered at run time
        result = render_report(run_dir, manifest=request["manifest"], kernel=kernel)
    except CpoError as exc:
        return _error_reply(exc)
    except Exception as exc:  # the parent renders in its own process instead
        return {"ok": False, "crash": f"{type(exc).__name__}: {exc}"}
    return {
        "ok": True,
        "result": {
            "files": result.files,
            "seconds": result.seconds,
            "simulated": result.simulated,
            "explain_note": result.explain_note,
        },
    }


if __name__ == "__main__":
    try:
        code = main(sys.argv)
    except (SystemExit, KeyboardInterrupt) as stop:  # SIGTERM or Ctrl-C; the kernel is stopped
        code = stop.code if isinstance(stop, SystemExit) and isinstance(stop.code, int) else 1
    # The reports are written (or not wanted) and the kernel is stopped: skip the
    # interpreter's teardown (unloading WeasyPrint, Pango, ...), which the parent waits for.
    os._exit(code)
