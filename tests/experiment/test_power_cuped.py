"""Planning for regression adjustment: cpo power --variance-reduction/--rho and the design's MDE.

Removing the share R of the outcome's variance (R = rho² for one covariate,
Deng et al. 2013) is worth 1 / (1 - R) times the units: the sample size is
(1 - R) times the unadjusted one (R's power.prop.test reference values), and
the MDE is the unadjusted formula at n / (1 - R).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.experiment import cuped
from cpo.experiment.analysis_settings import AnalysisSettings


def run(*args: str):
    return CliRunner().invoke(cli, ["power", *args])


def test_sample_size_shrinks_by_one_minus_r() -> None:
    """R: power.prop.test(p1 = 0.05, p2 = 0.055, power = 0.8): n = 31233.4; R = 0.09: x 0.91."""
    data = json.loads(
        run("--baseline", "0.05", "--effect", "0.1", "--relative", "--variance-reduction", "0.09",
            "--json").output
    )  # fmt: skip
    assert data["n_per_arm_unadjusted"] == pytest.approx(31233.4, abs=0.5)
    assert data["n_per_arm"] == pytest.approx(0.91 * data["n_per_arm_unadjusted"], rel=1e-12)
    assert data["n_per_arm_ceil"] == int(np.ceil(data["n_per_arm"]))
    text = run("--baseline", "0.05", "--effect", "0.1", "--relative", "--rho", "0.3").output
    assert "CUPED           variance reduction 0.09" in text
    assert f"n = {data['n_per_arm']:.1f} per arm" in text and "without adjustment 31233.4" in text


def test_mde_with_r_is_the_mde_of_n_over_one_minus_r() -> None:
    """--rho 0.3 on 10,000 per arm = the plain MDE of 10,000 / 0.91 per arm."""
    adjusted = json.loads(run("--baseline", "0.05", "--n-per-arm", "10000", "--rho", "0.3",
                              "--json").output)  # fmt: skip
    plain = json.loads(run("--baseline", "0.05", "--n-per-arm", str(10000 / 0.91), "--json").output)
    assert adjusted["mde_absolute"] == pytest.approx(plain["mde_absolute"], rel=1e-9)
    unadjusted = json.loads(run("--baseline", "0.05", "--n-per-arm", "10000", "--json").output)
    assert adjusted["mde_absolute_unadjusted"] == pytest.approx(unadjusted["mde_absolute"])
    assert adjusted["mde_absolute"] < unadjusted["mde_absolute"]


@pytest.mark.parametrize(
    "args",
    [
        ["--variance-reduction", "0.1", "--rho", "0.3"],
        ["--variance-reduction", "1"],
        ["--rho", "1"],
    ],
)
def test_bad_reduction_flags_are_usage_errors(args: list[str]) -> None:
    result = run("--baseline", "0.05", "--n-per-arm", "1000", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_expected_reduction_is_the_squared_correlation_when_history_is_the_rate() -> None:
    """If y ~ Bernoulli(x), corr(y, x)² = Var(x) / (x̄ (1 - x̄)): checked on 400,000 draws."""
    rng = np.random.default_rng(3)
    x = rng.beta(2, 12, size=400_000)
    y = rng.random(len(x)) < x
    customers = pd.DataFrame({"historical_click_rate": x})
    planned = cuped.expected_reduction(customers, "click_rate", ["historical_click_rate"])
    assert planned["variance_reduction"] == pytest.approx(np.corrcoef(y, x)[0, 1] ** 2, abs=0.003)
    assert planned["covariate"] == "historical_click_rate" and planned["reason"] is None


def test_metrics_without_their_own_history_expect_no_reduction() -> None:
    """Conversion and click-to-open have no history column of their own: 0, with a reason."""
    customers = pd.DataFrame({"historical_open_rate": [0.2, 0.4, 0.5],
                              "historical_click_rate": [0.01, 0.05, 0.1]})  # fmt: skip
    planned = cuped.expected_reductions(customers, AnalysisSettings().covariates)
    assert planned["open_rate"]["variance_reduction"] > 0
    for metric in ("conversion_rate", "click_to_open_rate"):
        assert planned[metric]["variance_reduction"] == 0.0
        assert "own pre-experiment history" in planned[metric]["reason"]
    missing = cuped.expected_reduction(pd.DataFrame({"x": [1]}), "click_rate",
                                       ["historical_click_rate"])  # fmt: skip
    assert missing["variance_reduction"] == 0.0 and "too few values" in missing["reason"]
