"""CLI subcommands, one module per command (or command group).

Each module registers its commands on :data:`cpo.cli.cli`; add a module and one
import line here to add a command.
"""

from cpo.commands import (
    analyze,
    approve,
    audit,
    export_sends,
    generate,
    index,
    init,
    power,
    report,
    retrieve,
    run,
    sample_data,
    screen,
    segment,
    send,
    serve,
    suppressions,
    users,
)

__all__ = [
    "analyze",
    "approve",
    "audit",
    "export_sends",
    "generate",
    "index",
    "init",
    "power",
    "report",
    "retrieve",
    "run",
    "sample_data",
    "screen",
    "segment",
    "send",
    "serve",
    "suppressions",
    "users",
]
