"""Conditions on a customer column, shared by segmentation rules and content eligibility.

``{column: tier, op: in, value: [Gold]}`` is one :class:`Condition`. Segmentation
rules (:mod:`cpo.segmentation.settings`) extend it with quantile thresholds;
content eligibility (:mod:`cpo.retrieval.eligibility`) uses it as is. It lives
here, outside both stage packages, so neither imports the other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from cpo.settings_base import StrictModel

Scalar = str | int | float | bool
Operator = Literal["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "between"]


def check_value_fits_operator(op: Operator, value: object) -> None:
    """Raise ValueError unless ``value`` has the shape ``op`` needs (list, pair, number)."""
    if op in ("in", "not_in") and not isinstance(value, list):
        raise ValueError(f"operator '{op}' needs a list value, e.g. [Gold, Silver]")
    if op == "between" and not (isinstance(value, list) and len(value) == 2):
        raise ValueError("operator 'between' needs a two-element list [low, high]")
    if op in ("<", "<=", ">", ">=") and isinstance(value, (list, bool, str)):
        raise ValueError(f"operator '{op}' needs a number")


class Condition(StrictModel):
    """One test on one column, e.g. ``{column: tier, op: in, value: [Gold]}``."""

    column: str
    op: Operator
    value: Scalar | list[Scalar]

    @model_validator(mode="after")
    def _value_matches_operator(self) -> Condition:
        check_value_fits_operator(self.op, self.value)
        return self
