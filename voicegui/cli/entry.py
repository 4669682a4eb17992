"""The `voicegui` console script and `python -m voicegui`: hand the command to a running window first, with
as little imported as possible, and only then load the command line (cli.main).

Issue 19, "`voicegui speak` via the running window -> first sound": a handed-over `voicegui speak TEXT` is a
whole process that only connects, sends and prints one line, so its start-up is most of its cost. cli.main
imports argparse, json, logging, pathlib, cli.args and crash (~50 ms of CPU) before it could try the
hand-off; here only cli.handoff and instance_protocol (standard library) are imported for `voicegui`, `speak`
and `stop`, and cli.main only when no window takes the command (or for any other command).

Threads: the main thread only. run(), the process's entry, ends a command that finishes while cli.preload's
threads still import or load a voice without finalizing the interpreter under them
(cli.preload.end_if_still_loading).
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


def run() -> int:
    """The process's own entry (the console script, `python -m voicegui`, the bundle): main(), then, if
    cli.preload's threads still run, the end of the process without finalizing the interpreter under them
    (cli.preload.end_if_still_loading). main() itself returns as usual, for the programs that call it (tests)."""
    try:
        code = main()
    except SystemExit as exc:  # argparse's usage errors and --help
        # Another code (a message) is left to Python, which prints it: nothing here raises one.
        if exc.code is None or isinstance(exc.code, int):
            _end_if_still_loading(exc.code or 0)
        raise
    _end_if_still_loading(code)
    return code


def _end_if_still_loading(code: int) -> None:
    # A command that never imported cli.preload started none of its threads: a handed-over one imports nothing
    # more here (tests/cli/test_startup.py counts its modules).
    preload = sys.modules.get("voicegui.cli.preload")
    if preload is not None:
        preload.end_if_still_loading(code)

