"""Reports of a run: report.html, report.pdf and report.ipynb, with explainability.

Public API (imported lazily; rendering pulls in WeasyPrint and nbclient):

* :func:`cpo.reporting.render.render_report` — write the three reports of a
  completed run folder (``cpo report RUN_DIR``; the ``report`` stage of ``cpo run``).
* :func:`cpo.reporting.artifacts.load_run` — read a run folder's artifacts
  defensively (names every missing artifact).

Modules: ``artifacts`` (reading), ``sections`` (one module per section's
content), ``charts`` (hand-written SVG), ``simulated``, ``html``, ``pdf``,
``notebook``, ``render``, ``stage``; templates in ``templates/``. The moderator
analysis is computed by :mod:`cpo.experiment.moderators` in the analyze stage;
the report reads its ``moderators.json``. See docs/report.md.
"""
