"""The command line's end of the single-instance hand-off: if a voicegui window runs, `voicegui`,
`voicegui speak TEXT | --clipboard | --selection` and `voicegui stop` send their request to it over its local
socket (voicegui.instance_protocol) and return at once; the window speaks with its own provider, voice and
tuning, and the Speak shows in its History.

Threads: the main thread, before anything else of the command runs: cli/main.py calls `handoff(argv)` first,
so no Qt, openai SDK or streaming stack is imported (nor its background preload started) when a window takes
the request. With no window (no socket, or a stale one a crashed window left), `handoff` returns None and the
command runs as before; `voicegui stop` then says 'nothing is playing' and exits 0 (a stop key bound on the
desktop must not report an error when there is nothing to stop).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from voicegui import instance_protocol as proto
from voicegui.cli.args import EXIT_FAILED, EXIT_OK, EXIT_USAGE, terminal_safe
from voicegui.instance_protocol import ProtocolError, Request, WindowState

# What a running window is asked for: only what it can honour. Other speak options (--voice, --out, ...)
# belong to a speak that plays in this process; with a window running they are refused, not dropped.
HANDOFF_COMMANDS = (None, "speak", "stop")
NO_WINDOW_STOP = "voicegui: nothing is playing (no voicegui window runs)"


def _speak_request(words: Sequence[str]) -> Request | str:
    """The request for `speak` arguments (after the word speak), or the sentence refusing them."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("text", nargs="?")
    parser.add_argument("--clipboard", action="store_true")
    parser.add_argument("--selection", action="store_true")
    args, rest = parser.parse_known_args(list(words))
    if rest:
        option = next((w for w in rest if w.startswith("-")), rest[0])
        return (f"a voicegui window is running and speaks with its own provider, voice and settings; {option} "
                "is not passed to it. Leave it out to speak through the window, or close the window to speak "
                "with it here.")
    chosen = [what for what, on in (("a text", args.text is not None), ("--clipboard", args.clipboard),
                                    ("--selection", args.selection)) if on]
    if len(chosen) != 1:
        return "give exactly one of: a text, --clipboard, --selection"
    if args.clipboard:
        return Request("speak-clipboard")
    if args.selection:
        return Request("speak-selection")
    return Request("speak", args.text)


def _request_for(command: str | None, argv: Sequence[str]) -> Request | str:
    if command is None:
        return Request("show")
    if command == "stop":
        return Request("stop")
    words = list(argv)
    words.remove("speak")
    words = [w for w in words if w not in ("-v", "-vv", "--verbose")]
    return _speak_request(words)


def handoff(argv: Sequence[str], command: str | None) -> int | None:
    """Hand the command to a running window and return the exit code, or None when no window runs (or the
    command is not one a window takes) and the command should run here."""
    if command not in HANDOFF_COMMANDS or {"-h", "--help", "--install-desktop", "--uninstall-desktop"} & set(argv):
        return None
    try:
        state, sock = proto.connect()
    except OSError as exc:
        # The socket exists but cannot be reached (permissions, a full queue): running here could play twice.
        print(f"voicegui: cannot reach the running voicegui window ({exc}); close it, or remove "
              f"{proto.socket_path()} if no window runs", file=sys.stderr)
        return EXIT_FAILED
    if sock is None:
        if command == "stop":
            print(NO_WINDOW_STOP, file=sys.stderr)
            return EXIT_OK
        return None  # no window (or a stale socket, which the next window removes): run here as before
    assert state is WindowState.RUNNING
    request = _request_for(command, argv)
    if isinstance(request, str):
        sock.close()
        print(f"voicegui: {request}", file=sys.stderr)
        return EXIT_USAGE
    try:
        reply = proto.exchange(sock, request)
    except (OSError, ProtocolError) as exc:
        print(f"voicegui: the running voicegui window did not answer ({exc}); close it and try again",
              file=sys.stderr)
        return EXIT_FAILED
    if command is not None:  # `voicegui` itself just raises the window, silently
        print(f"voicegui: {terminal_safe(reply.message)}", file=sys.stderr)
    return EXIT_OK if reply.ok else EXIT_FAILED
