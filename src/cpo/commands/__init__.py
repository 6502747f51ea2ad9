"""CLI subcommands, one module per command (or command group).

Each module registers its commands on :data:`cpo.cli.cli`; add a module and one
import line here to add a command.
"""

from cpo.commands import init, run, sample_data, segment

__all__ = ["init", "run", "sample_data", "segment"]
