"""``cpo serve``: the web app for the marketing manager and the compliance reviewer.

FastAPI pages rendered on the server with Jinja2 over the same library and run
folders the commands use. Modules:

* :mod:`cpo.web.app` builds the application (:func:`cpo.web.app.create_app`).
* :mod:`cpo.web.db` is the app's SQLite database (users, sessions, login
  failures, settings) next to the runs, with numbered migrations.
* :mod:`cpo.web.accounts` adds, lists and removes users and hashes passwords (argon2).
* :mod:`cpo.web.auth` logs people in: sessions, roles and CSRF tokens.
* :mod:`cpo.web.security` sets the security headers on every response.
* :mod:`cpo.web.templating` renders the pages.
* :mod:`cpo.web.runs` reads the run folders under the runs directory.
* :mod:`cpo.web.routes` holds one module per page area.

Nothing here is imported by ``cpo.cli`` at start-up: ``cpo serve`` and ``cpo users``
import it inside the command, so ``cpo --help`` never loads FastAPI.
"""
