"""The command line's end of the single-instance hand-off: if a voicegui window runs, `voicegui`,
`voicegui speak TEXT | --clipboard | --selection` and `voicegui stop` send their request to it over its local
socket (voicegui.instance_protocol) and return at once; the window speaks with its own provider, voice and
tuning, and the Speak shows in its History.

Threads: the main thread, before anything else of the command runs: the console script (cli/entry.py) calls
`handoff(argv)` first, so no Qt, openai SDK or streaming stack is imported (nor its background preload
started) when a window takes the request. With no window (no socket, or a stale one a crashed window left),
`handoff` returns None and the command runs as before; `voicegui stop` then says 'nothing is playing' and
exits 0 (a stop key bound on the desktop must not report an error when there is nothing to stop).

Start-up: a handed-over command is the whole process, so this module imports only os, sys and
instance_protocol (standard library only): no argparse (speak's three arguments are read by hand, the way
argparse reads them), no cli.args or crash (logging, pathlib, the redaction patterns: loaded only for a reply
that is not plain printable text). tests/cli/test_startup.py checks what a hand-off imports.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from voicegui import instance_protocol as proto
from voicegui.instance_protocol import ProtocolError, Request, WindowState

# What a running window is asked for: only what it can honour. Other speak options (--voice, --out, ...)
# belong to a speak that plays in this process; with a window running they are refused, not dropped.
HANDOFF_COMMANDS = (None, "speak", "stop")
NO_WINDOW_STOP = "voicegui: nothing is playing (no voicegui window runs)"
# cli.args' exit codes (tests/cli/test_handoff.py checks they agree): importing it would load argparse,
# logging and crash into every hand-off.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The window's own options, which a hand-off leaves to cli.main: help, and the desktop install.
RUN_HERE = frozenset({"-h", "--help", "--install-desktop", "--uninstall-desktop"})
VERBOSE = frozenset({"-v", "-vv", "--verbose"})  # logging of this process: nothing to pass on
SPEAK_FLAGS = ("--clipboard", "--selection")
ONE_SOURCE = "give exactly one of: a text, --clipboard, --selection"


def first_word(argv: Sequence[str]) -> str | None:
    """The command `argv` names: its first word that is not an option (the options before the command take no
    value: -v, --install-desktop, ...), or None (the window)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _is_option(word: str) -> bool:
    """Whether argparse (given speak's options, none of which looks like a negative number) reads `word` as
    an option rather than as the text: '-' alone, a negative number ('-5', '-.5') and a word with a space
    are texts."""
    if not word.startswith("-") or word == "-":
        return False
    whole, dot, fraction = word[1:].partition(".")
    if (whole.isdecimal() and not dot) or (dot and (not whole or whole.isdecimal()) and fraction.isdecimal()):
        return False  # argparse's negative number: ^-\d+$|^-\d*\.\d+$
    return " " not in word


def _flag(word: str) -> str | None:
    """The speak flag `word` names, also abbreviated as argparse allows (--clip, --sel), or None."""
    if not word.startswith("--") or len(word) < 3:
        return None
    matches = [flag for flag in SPEAK_FLAGS if flag.startswith(word.partition("=")[0])]
    return matches[0] if len(matches) == 1 else None


def read_speak_words(words: Sequence[str]) -> tuple[str | None, set[str], list[str]]:
    """(the text, the flags given, the words a window does not take) of `speak`'s arguments, read as
    argparse's parse_known_args reads them with speak's text, --clipboard and --selection; ValueError with a
    sentence for a flag given a value (--clipboard=x), which argparse refuses too."""
    text: str | None = None
    flags: set[str] = set()
    rest: list[str] = []
    only_texts = False
    for word in words:
        if not only_texts and word == "--":
            only_texts = True  # argparse: every word after the first '--' is a text
            continue
        flag = None if only_texts else _flag(word)
        if flag is not None:
            if "=" in word:
                raise ValueError(f"{flag} takes no value (it was given {word!r}); leave out the '=...'")
            flags.add(flag)
        elif not only_texts and _is_option(word):
            rest.append(word)
        elif text is None:
            text = word
        else:
            rest.append(word)
    return text, flags, rest


def _speak_request(words: Sequence[str]) -> Request | str:
    """The request for `speak` arguments (after the word speak), or the sentence refusing them."""
    try:
        text, flags, rest = read_speak_words(words)
    except ValueError as exc:
        return str(exc)
    if rest:
        option = next((w for w in rest if w.startswith("-")), rest[0])
        return (f"a voicegui window is running and speaks with its own provider, voice and settings; {option} "
                "is not passed to it. Leave it out to speak through the window, or close the window to speak "
                "with it here.")
    chosen = [what for what, on in (("a text", text is not None), ("--clipboard", "--clipboard" in flags),
                                    ("--selection", "--selection" in flags)) if on]
    if len(chosen) != 1:
        return ONE_SOURCE
    if "--clipboard" in flags:
        return Request("speak-clipboard")
    if "--selection" in flags:
        return Request("speak-selection")
    assert text is not None
    return Request("speak", text)


def _request_for(command: str | None, argv: Sequence[str]) -> Request | str:
    if command is None:
        return Request("show")
    if command == "stop":
        return Request("stop")
    words = list(argv)
    words.remove("speak")
    return _speak_request([w for w in words if w not in VERBOSE])


def _printable(message: str) -> str:
    """The window's reply as it may be printed: our window's replies are plain sentences, printed as they
    are; anything else (a control character: not our window's words) goes through cli.args.terminal_safe."""
    if message.isprintable():
        return message
    from voicegui.cli.args import terminal_safe

    return terminal_safe(message)


def handoff(argv: Sequence[str], command: str | None) -> int | None:
    """Hand the command to a running window and return the exit code, or None when no window runs (or the
    command is not one a window takes) and the command should run here."""
    if command not in HANDOFF_COMMANDS or RUN_HERE.intersection(argv):
        return None
    try:
        state, sock = proto.connect()
    except OSError as exc:
        # The socket exists but cannot be reached (permissions, a full queue): running here could play twice.
        print(f"voicegui: cannot reach the running voicegui window ({exc}); close it, or remove "
              f"{proto.socket_file()} if no window runs", file=sys.stderr)
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
        print(f"voicegui: {_printable(reply.message)}", file=sys.stderr)
    return EXIT_OK if reply.ok else EXIT_FAILED
