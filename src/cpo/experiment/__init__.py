"""Experiment: design, assignment, engagement and the analysis.

The original specification's analysis functions are importable from here::

    from cpo.experiment import calculate_metrics, calculate_lift

They are loaded lazily (PEP 562) so that importing a light module of this
package (settings, stats) does not pull in pandas-heavy analysis code.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Public name -> module that defines it (imported on first use).
_LAZY_EXPORTS = {
    "calculate_metrics": "cpo.experiment.metrics",
    "calculate_lift": "cpo.experiment.metrics",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access."""
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cpo.experiment' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
