"""The error hierarchy of cpo.

Every error a user can cause derives from :class:`CpoError`. Each message says
what failed, on which object (file, key path, row, backend) and how to fix it.
The CLI prints ``str(error)`` and exits with status 1; set ``CPO_DEBUG=1`` to see
the traceback as well.

Hierarchy::

    CpoError
    ├── ConfigError           a config file is missing, malformed or invalid
    ├── DataValidationError   customer, content or engagement data is invalid
    ├── RunDirError           the run folder cannot be used (not empty, missing, locked)
    ├── OutputPathError       a file or folder a command writes cannot be written there
    ├── StageError            a pipeline stage failed (wraps the cause)
    ├── BackendError          a backend failed (network, protocol, auth)
    │   └── BackendUnavailable  a backend's optional dependency is not installed
    └── AuditError            the safety audit log is broken or tampered with
"""

from __future__ import annotations

from collections.abc import Iterable


class CpoError(Exception):
    """Base class for every error cpo reports to a user.

    Args:
        message: What failed and on which object.
        hint: How to fix it (optional; appended to the message).
    """

    def __init__(
        self, message: str, hint: str | None = None, sensitive: Iterable[str] = ()
    ) -> None:
        self.message = message
        self.hint = hint
        #: Values in the message (e.g. customer ids) that a log must mask; the
        #: terminal shows them so the user can find the rows.
        self.sensitive = tuple(str(v) for v in sensitive if str(v))
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


class ConfigError(CpoError):
    """A configuration file is missing, malformed or fails validation."""


class DataValidationError(CpoError):
    """Input data (customers, content, engagement) fails validation."""


class RunDirError(CpoError):
    """The run directory cannot be used as asked."""


class OutputPathError(CpoError):
    """A file or folder a command writes is misplaced or cannot be written.

    For example a file where a folder is needed (or the reverse), a parent
    that is a file, or a folder without write permission.
    """


class StageError(CpoError):
    """A pipeline stage failed; ``stage`` names it."""

    def __init__(
        self, stage: str, message: str, hint: str | None = None, sensitive: Iterable[str] = ()
    ) -> None:
        self.stage = stage
        super().__init__(f"stage '{stage}' failed: {message}", hint, sensitive)


class BackendError(CpoError):
    """A backend (local or remote) failed to do its job."""


class BackendUnavailable(BackendError):
    """A backend needs an optional dependency that is not installed."""


class AuditError(CpoError):
    """The safety audit log is invalid, broken or tampered with."""
