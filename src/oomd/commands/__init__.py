"""``oomd SUBCOMMAND ...``: the operator's tools beside the daemon.

Upstream oomd takes no positional argument, so a first argument that names a
subcommand can never change what an upstream command line means. Each subcommand is a
module of this package with ``main(argv) -> int`` (argv without the subcommand name),
imported only when it runs, so the daemon never loads them. Register one in
:data:`SUBCOMMANDS` with a one-line summary for ``oomd --help``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import cast

#: name -> (module under oomd.commands, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "install-service": ("install_service", "install oomd.service (systemd) and /etc/oomd"),
    "record": ("record", "record what a config's plugins read into a trace file"),
    "replay": ("replay", "replay a trace through a config (kills simulated)"),
    "report": ("report", "an HTML page of a trace replayed with a config"),
    "status": ("status", "what the running daemon watches and whom it would kill (--json)"),
    "explain": ("explain", "the same view for a config on this host, without a daemon"),
}


def find(name: str) -> Callable[[Sequence[str]], int] | None:
    """The ``main`` of subcommand ``name``, or None if there is no such subcommand."""
    entry = SUBCOMMANDS.get(name)
    if entry is None:
        return None
    module = importlib.import_module(f"oomd.commands.{entry[0]}")
    return cast(Callable[[Sequence[str]], int], module.main)


def usage() -> str:
    """The subcommands section of ``oomd --help`` (empty while there are none)."""
    if not SUBCOMMANDS:
        return ""
    lines = ["", "subcommands (oomd SUBCOMMAND --help for their options):"]
    lines += [f"  {name:<25}  {summary}" for name, (_, summary) in sorted(SUBCOMMANDS.items())]
    return "\n".join(lines) + "\n"
