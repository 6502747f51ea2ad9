"""Explainability for the report: the moderator analysis of the experiment package.

The computation lives in :mod:`cpo.experiment.moderators`; the ``analyze``
stage writes its result to ``moderators.json`` once per run. This module
re-exports the records and functions under their former names, so there is a
single implementation.
"""

from __future__ import annotations

from cpo.experiment.moderators import (
    ATTRIBUTES,
    AttributeRank,
    AttributeSpec,
    BinLift,
    ExplainResult,
    InteractionTerm,
    RegressionResult,
    explain_moderators,
    fit_interaction_model,
    narrate,
)

__all__ = [
    "ATTRIBUTES",
    "AttributeRank",
    "AttributeSpec",
    "BinLift",
    "ExplainResult",
    "InteractionTerm",
    "RegressionResult",
    "explain_moderators",
    "fit_interaction_model",
    "narrate",
]
