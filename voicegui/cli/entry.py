"""The `voicegui` console script and `python -m voicegui`: hand the command to a running window first, with
as little imported as possible, and only then load the command line (cli.main).

Issue 19, "`voicegui speak` via the running window -> first sound": a handed-over `voicegui speak TEXT` is a
whole process that only connects, sends and prints one line, so its start-up is most of its cost. cli.main
imports argparse, json, logging, pathlib, cli.args and crash (~50 ms of CPU) before it could try the
hand-off; here only cli.handoff and instance_protocol (standard library) are imported for `voicegui`, `speak`
and `stop`, and cli.main only when no window takes the command (or for any other command).

Threads: the main thread only.
"""

from __future__ import annotations

import sys

from voicegui.cli.handoff import first_word, handoff


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Anything but the window, speak and stop goes straight to cli.main.
    word = first_word(argv)
    if word in (None, "speak", "stop"):
        handed = handoff(argv, word)
        if handed is not None:
            return handed
    # No window took it. cli.main.main tries the hand-off again (one refused connect: microseconds), as it
    # does for every caller that imports it.
    from voicegui.cli.main import main as run_here

    return run_here(argv)
