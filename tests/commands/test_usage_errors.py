"""One convention for usage errors: a bad flag exits 2 with a message naming it.

Every command is covered (a new command without a case here fails
``test_every_command_has_a_case``). Each case is something the command line alone
shows to be wrong, so the command stops before reading or writing anything.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cpo.cli import cli

#: command -> cases of (arguments, a text the message must contain). ``{tmp}`` is a
#: fresh folder; nothing in it exists unless the case says so.
CASES: dict[str, list[tuple[list[str], str]]] = {
    "analyze": [(["analyze", "{tmp}/engagement.csv", "--out"], "'--out' requires an argument")],
    "approve": [
        (["approve", "{tmp}/run"], "--by NAME is required"),
        (["approve", "{tmp}/run", "--by", "  "], "--by NAME is required"),
    ],
    "audit export": [(["audit", "export", "{tmp}/run"], "Missing option '--csv'")],
    "audit verify": [(["audit", "verify", "{tmp}/run", "--csv", "x"], "No such option '--csv'")],
    "export-sends": [(["export-sends", "{tmp}/run", "--format", "xlsx"], "'--format'")],
    "generate": [
        (["generate", "--segment", "At-Risk"], "Missing option '--tone'"),
        (
            ["generate", "--segment", "S", "--tone", "t", "--run", "{tmp}/run", "--content", "c"],
            "--content: not with --run",
        ),
    ],
    "index": [(["index", "{tmp}/content", "--as-of", "2027-02-30"], "'--as-of'")],
    "init": [
        (
            ["init", "{tmp}/config", "--site", "https://shop.example.org"],
            "--site: only with --brand",
        ),
        (["init", "{tmp}/config", "--brand", "Acme"], "--brand needs --site and --unsubscribe-url"),
    ],
    "power": [
        (["power", "--baseline", "0.2"], "exactly one of --n-per-arm"),
        (["power", "--baseline", "1.5", "--effect", "0.1"], "'--baseline'"),
    ],
    "report": [(["report", "{tmp}/run", "--pdf"], "No such option '--pdf'")],
    "retrieve": [
        (["retrieve", "--segment", "S", "--query", "tents"], "exactly one of --segment NAME"),
        (
            ["retrieve", "--segment", "S", "--run", "{tmp}/run", "--customers", "c.csv"],
            "--customers: not with --run",
        ),
        (["retrieve", "--query", "tents", "--top-k", "0"], "'--top-k'"),
    ],
    "run": [
        (["run", "--out", "{tmp}/a", "--resume", "{tmp}/b"], "exactly one of --out DIR"),
        (["run"], "exactly one of --out DIR"),
        (["run", "--out", "{tmp}/a", "--seed", "-1"], "'--seed'"),
        (["run", "--out", "{tmp}/a", "--waves", "0"], "'--waves'"),
    ],
    "sample-data": [(["sample-data", "--customers", "0", "--out", "{tmp}/s"], "'--customers'")],
    "screen": [
        (["screen"], "exactly one of --text TEXT or --file"),
        (["screen", "--text", "hi", "--file", "{tmp}/variants.json"], "exactly one of --text"),
    ],
    "segment": [(["segment", "{tmp}/customers.csv", "--method", "tree"], "'--method'")],
    "send": [
        (["send", "{tmp}/run", "--smtp-port", "0"], "'--smtp-port'"),
        (["send", "{tmp}/run", "--rate", "-1"], "'--rate'"),
    ],
    "suppressions add": [
        (["suppressions", "add", "--suppressions", "{tmp}/s"], "Missing argument 'VALUES...'"),
        (["suppressions", "add", "a@example.org", "--reason", "x"], "'--reason'"),
    ],
    "suppressions export": [(["suppressions", "export", "--force"], "Missing option '--out'")],
    "suppressions list": [(["suppressions", "list", "--reason", "x"], "No such option")],
    "suppressions remove": [(["suppressions", "remove"], "Missing argument 'VALUES...'")],
    "serve": [
        (["serve", "--runs", "{tmp}", "--port", "0"], "'--port'"),
        (["serve", "--runs", "{tmp}", "--max-upload-mb", "-1"], "'--max-upload-mb'"),
    ],
    "users add": [
        (["users", "add", "--role", "admin", "--runs", "{tmp}"], "Missing argument 'NAME'"),
        (["users", "add", "ana", "--role", "owner", "--runs", "{tmp}"], "'--role'"),
    ],
    "users list": [(["users", "list", "--runs", "{tmp}", "--role", "admin"], "No such option")],
    "users passwd": [(["users", "passwd", "--runs", "{tmp}"], "Missing argument 'NAME'")],
    "users remove": [(["users", "remove", "--runs", "{tmp}"], "Missing argument 'NAME'")],
}


def _command_names(group: click.Group, prefix: str = "") -> set[str]:
    """Every leaf command of ``group``, as it is typed (``audit verify``)."""
    names: set[str] = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names |= _command_names(command, f"{prefix}{name} ")
        else:
            names.add(f"{prefix}{name}")
    return names


def test_every_command_has_a_case() -> None:
    assert _command_names(cli) == set(CASES)


@pytest.mark.parametrize(
    ("args", "expected"),
    [case for cases in CASES.values() for case in cases],
    ids=[f"{name}-{i}" for name, cases in CASES.items() for i in range(len(cases))],
)
def test_a_bad_flag_exits_2_naming_it(tmp_path: Path, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(cli, [arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert result.exit_code == 2, result.output
    assert result.output.rstrip().splitlines()[-1].startswith("Error: "), result.output
    assert expected in result.output, result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # stopped before writing anything
