"""The Spark engine's errors: one message each, exit code 1, no traceback.

Bad segmentation rules give the local engine's error word for word (the Spark
engine checks the rule columns with the local code on the first rows Spark
read); k-means is refused with what to do instead; a
missing PySpark or Java is one message with the install commands.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cpo.cli import cli


def _config(tmp_path: Path, name: str, engine: str, segmentation: dict[str, Any]) -> Path:
    """A config folder with ``compute.engine`` and ``segmentation`` keys set."""
    folder = tmp_path / f"config-{name}"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["compute"]["engine"] = engine
    data["segmentation"].update(segmentation)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def _failed_run(tmp_path: Path, config: Path, name: str) -> str:
    """``cpo run`` that must fail with exit code 1 and no traceback; its output."""
    out = tmp_path / f"run-{name}"
    result = CliRunner().invoke(cli, ["run", "--out", str(out), "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def _rule(column: str, op: str, value: Any) -> dict[str, Any]:
    return {"name": "Picked", "conditions": [{"column": column, "op": op, "value": value}]}


BAD_RULES = {
    "missing column": _rule("lifetime_spend", ">=", {"quantile": 0.5}),
    "quantile of text": _rule("loyalty_tier", ">=", {"quantile": 0.5}),
    "text compared with a number": _rule("loyalty_tier", ">", 3),
}


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_bad_rules_give_the_local_engines_error(tmp_path: Path, case: str) -> None:
    rules = {"method": "rules", "rules": [BAD_RULES[case]]}
    local = _failed_run(tmp_path, _config(tmp_path, "local", "local", rules), "local")
    on_spark = _failed_run(tmp_path, _config(tmp_path, "spark", "spark", rules), "spark")
    assert "experiment_config.yaml: key 'segmentation.rules[0]" in local
    assert _without_timings(local, tmp_path / "run-local") == _without_timings(
        on_spark, tmp_path / "run-spark"
    )


def _without_timings(output: str, run_dir: Path) -> str:
    """The output with stage durations and the run folder's path blanked."""
    return re.sub(r" +\d+\.\d+s", " N s", output.replace(str(run_dir), "RUN"))


def test_kmeans_is_refused_on_spark_with_the_alternatives(tmp_path: Path) -> None:
    output = _failed_run(tmp_path, _config(tmp_path, "km", "spark", {"method": "kmeans"}), "km")
    assert "'segmentation.method' is 'kmeans', which the Spark engine does not run" in output
    assert "segmentation.method: rules, or compute.engine: local" in output


def test_missing_pyspark_is_one_message_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError
    output = _failed_run(tmp_path, _config(tmp_path, "nopyspark", "spark", {}), "nopyspark")
    assert "compute.engine is 'spark' but PySpark is not installed" in output
    assert 'pip install "cpo[spark]"' in output and "openjdk-17-jre-headless" in output


@pytest.mark.parametrize("where", ["JAVA_HOME", "PATH"])
def test_missing_java_is_one_message_with_the_install_command(tmp_path: Path, where: str) -> None:
    config = _config(tmp_path, "nojava", "spark", {})
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    if where == "JAVA_HOME":
        env["JAVA_HOME"] = str(tmp_path / "no-jdk-here")
    else:  # only the interpreter's folder on PATH: no java there
        env["PATH"] = str(Path(sys.executable).parent)
    command = [sys.executable, "-m", "cpo", "run", "--out", str(tmp_path / "run")]
    result = subprocess.run(
        [*command, "--config", str(config)], env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert "but Java was not found" in output
    assert 'pip install "cpo[spark]"' in output and "openjdk-17-jre-headless" in output
