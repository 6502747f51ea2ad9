"""Reports of a run: report.html, report.pdf and report.ipynb, with explainability.

Public API (imported lazily; rendering pulls in matplotlib, WeasyPrint and nbclient):

* :func:`cpo.reporting.render.render_report` — write the three reports of a
  completed run folder (``cpo report RUN_DIR``; the ``report`` stage of ``cpo run``).
* :func:`cpo.reporting.explain.explain_moderators` — which customer attributes
  moderate the treatment effect (pure: a DataFrame in, a frozen result out).
* :func:`cpo.reporting.artifacts.load_run` — read a run folder's artifacts
  defensively (names every missing artifact).

Modules: ``artifacts`` (reading), ``context`` / ``variants_view`` / ``guidance``
(section content), ``charts`` (SVG), ``html``, ``pdf``, ``notebook``, ``render``,
``stage``; templates in ``templates/``. See docs/report.md.
"""
