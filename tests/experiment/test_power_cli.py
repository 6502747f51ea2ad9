"""`cpo power`: the R power.prop.test reference values through the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cpo.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, ["power", *args])


def test_sample_size_reference_from_r():
    # R: power.prop.test(p1 = 0.5, p2 = 0.75, power = 0.9) prints n = 76.65294 per group
    # ("n = 76.7" in R's example). R stops uniroot early: at 76.65294 the power is only
    # 0.89980; the exact root of the same formula is 76.7069 (power 0.9000000).
    result = run("--baseline", "0.5", "--effect", "0.25", "--power", "0.9", "--alpha", "0.05")
    assert result.exit_code == 0, result.output
    assert "n = 76.7 per arm (plan for 77)" in result.output
    data = json.loads(
        run("--baseline", "0.5", "--effect", "0.25", "--power", "0.9", "--json").output
    )
    assert data["n_per_arm"] == pytest.approx(76.65294, abs=0.06)
    assert data["n_per_arm"] == pytest.approx(76.70693, abs=1e-4)
    assert data["n_per_arm_ceil"] == 77


def test_relative_effect_reference_from_r():
    # R: power.prop.test(p1 = 0.05, p2 = 0.055, power = 0.8) -> n = 31233.4 per group.
    result = run("--baseline", "0.05", "--effect", "0.1", "--relative", "--json")
    data = json.loads(result.output)
    assert data["n_per_arm"] == pytest.approx(31233.4, abs=0.5)
    assert data["effect_absolute"] == pytest.approx(0.005)


def test_mde_inverts_the_sample_size_and_divides_alpha_by_comparisons():
    # Inverse of the reference: the exact n = 76.70693 per arm detects p2 = 0.75.
    # R: power.prop.test(n = 50, p1 = 0.5, power = 0.9) -> p2 = 0.8026141 (uniroot's
    # tolerance again; the exact root is 0.80263).
    data = json.loads(
        run("--baseline", "0.5", "--n-per-arm", "76.70693", "--power", "0.9", "--json").output
    )
    assert data["target_rate"] == pytest.approx(0.75, abs=1e-5)
    fifty = json.loads(
        run("--baseline", "0.5", "--n-per-arm", "50", "--power", "0.9", "--json").output
    )
    assert fifty["target_rate"] == pytest.approx(0.8026141, abs=1e-4)
    three = json.loads(
        run("--baseline", "0.5", "--n-per-arm", "100", "--comparisons", "3", "--json").output
    )
    one = json.loads(run("--baseline", "0.5", "--n-per-arm", "100", "--json").output)
    assert three["alpha_per_comparison"] == pytest.approx(0.05 / 3)
    assert three["mde_absolute"] > one["mde_absolute"]
    text = run("--baseline", "0.5", "--n-per-arm", "100").output
    assert "MDE = +" in text and "relative" in text


def test_unreachable_and_usage_errors_exit_non_zero():
    unreachable = run("--baseline", "0.5", "--n-per-arm", "2")
    assert unreachable.exit_code == 1 and "unreachable" in unreachable.output
    both = run("--baseline", "0.5", "--n-per-arm", "2", "--effect", "0.1")
    assert both.exit_code == 2 and "exactly one" in both.output
    bad = run("--baseline", "1.5", "--effect", "0.1")
    assert bad.exit_code == 2
