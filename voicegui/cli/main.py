"""Command line: `voicegui` (the window) | speak | stop | serve | bench | lineup | voices | devices.

Threads: each subcommand runs on the main thread; `speak` and `bench` run the streaming core on a plain
asyncio loop there (the PortAudio callback thread is started by the session). Errors reach the user as one
clear line on stderr and a non-zero exit code, never as a traceback. What a server says goes through
cli.args.terminal_safe (redacted, control characters escaped) before it is printed; the API key comes from
--api-key-file or $OPENAI_API_KEY (--api-key works but warns: `ps` shows it to every local user).

Start-up (issue 17, "command to sound"): this module imports only what parsing needs; each subcommand's
module is imported, and its arguments added, only when that subcommand is run, so `voicegui speak` loads no
Qt, no engine it does not use and nothing of the other subcommands. `speak` starts importing the streaming
stack (the openai SDK is most of the start-up) on a background thread at the first line of `main`. Just
before that, a `speak` with the built-in voices forks the process that serves them (cli.builtin_process: their
server, and the voice's model, start on the second core meanwhile); where no fork is made (main called by a
program with threads of its own) they start in this process, the model loading on a thread (cli.preload).

One window (issue 19): before any of that, `voicegui`, `speak` and `stop` check for a running window and hand
their request to it (cli.handoff); only with no window does `speak` play here (`stop` then has nothing to stop),
reading `--selection` / `--clipboard` itself first (cli.read_selection).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from voicegui.cli.args import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    SPEED_HELP,
    KeyFileError,
    TerminalSafeFormatter,
    add_playback_arguments,
    add_request_extra_arguments,
    add_server_arguments,
    add_stream_format_argument,
    api_key_from,
    positive_float,
    safe_output,
    speed_problem,
    start_builtin,
    terminal_safe,
)
from voicegui.cli.handoff import ONE_SOURCE, first_word, handoff
from voicegui.cli.preload import import_in_background, import_quietly, load_voice_in_background, single_blas_thread
from voicegui.crash import redact
from voicegui.formats import FORMATS
from voicegui.long_lived import freeze_loaded

if TYPE_CHECKING:
    import numpy as np

    from voicegui.cli.builtin_process import BuiltinAddress, BuiltinProcess
    from voicegui.features.timings import Timings
    from voicegui.server.embedded import BuiltinServer
    from voicegui.stream.fetch import SpeechRequest
    from voicegui.stream.player import Playback

# Raw pcm carries no header: a server that sends another rate without saying so plays too fast or too slow.
UNANNOUNCED_PCM_RATE = ("the server did not say the sample rate of its raw pcm; it was played as 24000 Hz "
                        "(OpenAI's). If it sounded too fast or too slow, pass --pcm-rate HZ (Piper voices: 22050) "
                        "or ask for --format wav, which carries its rate.")

log = logging.getLogger("voicegui")

# speak's provider defaults: the built-in server's (its first voice if hibari's "heart" is missing), or
# OpenAI's with --base-url.
BUILTIN_MODEL, BUILTIN_VOICE = "builtin", "heart"
REMOTE_MODEL, REMOTE_VOICE = "tts-1", "alloy"

COMMANDS = ("speak", "stop", "serve", "bench", "lineup", "voices", "devices")
# What `speak` imports before its request can go out, started at once in the background (cli.preload): the
# SDK, then what it imports only when the first request is built (fetch.SPEECH_REQUEST_MODULES: the speech
# resource, its parameter types, the HTTP transport, anyio's asyncio backend); then, for an https server, the
# TLS context is built (reading the CA store). The audio stack (SPEAK_AFTER_REQUEST) is imported once the request
# is out (_play).
SPEAK_PRELOAD = ("voicegui.stream.fetch", "openai")
SPEAK_AFTER_REQUEST = ("voicegui.stream.player", "voicegui.decode.stream_decoder")


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` runs (None: the window), read without parsing: the options before it take no
    value (-v, --install-desktop, ...), so it is the first word that is not an option."""
    word = first_word(argv)
    return word if word in COMMANDS else None


def build_parser(commands: Collection[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser; only `commands` get their arguments (each subcommand's module is imported for them), the
    others are listed by `voicegui --help` all the same."""
    parser = argparse.ArgumentParser(prog="voicegui", description="Hear text-to-speech voices, measured.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("--install-desktop", action="store_true",
                        help="add voicegui to this user's application menu (XDG dirs) and exit")
    parser.add_argument("--uninstall-desktop", action="store_true",
                        help="remove what --install-desktop added and exit")
    sub = parser.add_subparsers(dest="command")

    sp = sub.add_parser("speak", help="speak text through the audio device (through the window if one runs)")
    sp.add_argument("text", nargs="?", help="text to speak")
    sp.add_argument("--clipboard", action="store_true",
                    help="speak the clipboard (through the voicegui window if one runs, else read here from X11)")
    sp.add_argument("--selection", action="store_true",
                    help="speak the selected text, X11's primary selection (through the voicegui window if one "
                         "runs, else read here)")
    add_server_arguments(sp)
    sp.add_argument("--model", default=None,
                    help=f"model id (default: {BUILTIN_MODEL} for the built-in voices, {REMOTE_MODEL} with --base-url)")
    sp.add_argument("--voice", default=None,
                    help=f"voice id (default: {BUILTIN_VOICE} for the built-in voices, {REMOTE_VOICE} with --base-url)")
    sp.add_argument("--format", default="pcm", choices=FORMATS)
    sp.add_argument("--speed", type=float, default=None, help=SPEED_HELP)
    sp.add_argument("--instructions", default=None)
    sp.add_argument("--timeout-s", type=positive_float, default=30.0)
    sp.add_argument("--json", action="store_true", help="print one JSON object of metrics on stdout")
    sp.add_argument("--out", type=Path, default=None, help="write what was played to this WAV file")
    sp.add_argument("--captions", type=Path, default=None, metavar="FILE.srt|FILE.vtt",
                    help="write captions of what was played (the built-in voices' own timings where they describe it, "
                         "else estimated from its pauses and marked so)")
    add_request_extra_arguments(sp)
    add_playback_arguments(sp)
    add_stream_format_argument(sp)

    sv = sub.add_parser("serve", help="run the built-in OpenAI-compatible speech server")
    if "serve" in commands:
        from voicegui.cli.serve import add_serve_arguments

        add_serve_arguments(sv)

    bp = sub.add_parser("bench", help="measure added latency, completeness and underruns per format")
    if "bench" in commands:
        from voicegui.cli.bench import add_bench_arguments

        add_bench_arguments(bp)

    lp = sub.add_parser("lineup", help="speak one text with several voices in turn; write an HTML/CSV report")
    if "lineup" in commands:
        from voicegui.cli.lineup import add_lineup_arguments

        add_lineup_arguments(lp)

    vp = sub.add_parser("voices", help="list the voices (and with --models the models) a provider offers")
    if "voices" in commands:
        from voicegui.cli.voices import add_voices_arguments

        add_voices_arguments(vp)

    sub.add_parser("devices", help="list audio output devices")
    sub.add_parser("stop", help="stop what the voicegui window speaks")
    return parser


def _setup_logging(verbose: int, window: bool = False) -> None:
    # The window logs at INFO by default: its "voicegui ready" line is what smoke tests wait for.
    base = logging.INFO if window else logging.WARNING
    level = base if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(TerminalSafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def _builtin_voices(args: argparse.Namespace, forked: BuiltinProcess | OSError | None
                    ) -> tuple[BuiltinServer | BuiltinAddress | None, str]:
    """The built-in voices for this speak: the forked process's (main forked it at the first line), else a
    server in this process (started now: no fork was made, or the system refused it); or None and why not."""
    if forked is not None and not isinstance(forked, OSError):
        address = forked.ready()
        if address.problem:
            return None, address.problem
        return address, ""
    if isinstance(forked, OSError):
        log.warning("the built-in voices start in this process: no second process (%s)", forked)

    # The voice's model loads while the server starts and the request is prepared.
    return start_builtin(
        before_start=lambda engines, default: load_voice_in_background(engines, args.voice or default))


def run_speak(args: argparse.Namespace, forked: BuiltinProcess | OSError | None = None) -> int:
    """Speak `args.text` once; without --base-url through the built-in voices, started for this run only.

    On success prints nothing (or, with --json, only the metrics object) and returns 0.
    """
    if [args.text is not None, args.clipboard, args.selection].count(True) > 1:
        print(f"voicegui: {ONE_SOURCE}", file=sys.stderr)
        return EXIT_USAGE
    from_desktop = args.clipboard or args.selection
    if not from_desktop and (args.text is None or not args.text.strip()):
        print("voicegui: nothing to say: the text is empty", file=sys.stderr)
        return EXIT_USAGE
    if speed_problem(args.speed):
        print(f"voicegui: {speed_problem(args.speed)}", file=sys.stderr)
        return EXIT_USAGE
    if not 0 <= args.volume <= 1:
        print(f"voicegui: volume must be between 0 and 1, not {args.volume}", file=sys.stderr)
        return EXIT_USAGE
    if args.captions is not None and args.captions.suffix.lower() not in (".srt", ".vtt"):
        print(f"voicegui: --captions writes .srt or .vtt files, not {args.captions.name!r}: name it "
              f"{args.captions.stem}.srt or {args.captions.stem}.vtt", file=sys.stderr)
        return EXIT_USAGE

    from voicegui.request_extras import ExtrasError, lang_code_problem, parse_voice, request_extra_body

    if lang_code_problem(args.lang_code):
        print(f"voicegui: {lang_code_problem(args.lang_code)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        voice_object = False
        if args.voice is not None:
            args.voice, voice_object = parse_voice(args.voice)
    except ExtrasError as exc:
        print(f"voicegui: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if from_desktop:  # no window took it (cli.handoff): read it here, then speak it as a text
        from voicegui.cli.read_selection import CLIPBOARD, SELECTION, ReadError, read_text

        try:
            args.text = read_text(CLIPBOARD if args.clipboard else SELECTION)
        except ReadError as exc:
            print(f"voicegui: {exc}", file=sys.stderr)
            return EXIT_FAILED

    usable, key = _api_key(args)
    if not usable:
        return EXIT_USAGE

    from voicegui.cli.builtin_process import BuiltinAddress

    builtin: BuiltinServer | BuiltinAddress | None = None
    if args.base_url is None:
        builtin, problem = _builtin_voices(args, forked)
        if builtin is None:
            print(f"voicegui: {problem}", file=sys.stderr)
            return EXIT_FAILED
        # The per-run token, never $OPENAI_API_KEY: the user's real key has no business on this server.
        base_url, api_key = builtin.base_url, builtin.token
        model, voice = args.model or builtin.default_model, args.voice or builtin.default_voice
    else:
        base_url = args.base_url
        api_key = key or "none"
        model, voice = args.model or REMOTE_MODEL, args.voice or REMOTE_VOICE
    from voicegui import crash

    crash.register_secret(api_key)  # redacted from every log line and crash report from here on
    try:
        # Already imported, or being imported, by main's preload thread: these wait for it. None of them
        # imports numpy, PortAudio or PyAV: the request goes out first (_play).
        import asyncio

        from voicegui.openai_models import is_openai_url
        from voicegui.stream.fetch import SpeechRequest, insecure_http_warning
        from voicegui.text import split_for_request

        warning = insecure_http_warning(base_url)
        if warning:
            print(f"voicegui: {warning}", file=sys.stderr)
        # Over the API's 4096-character limit: split at sentence boundaries, played as one utterance.
        pieces = split_for_request(args.text)
        # "stream": true by default to servers that are neither OpenAI nor ours (server_profile's reasoning)
        send_stream = args.stream_field if args.stream_field is not None else (
            builtin is None and not is_openai_url(base_url))
        request = SpeechRequest(
            base_url=base_url, api_key=api_key, model=model, voice=voice, text=pieces[0],
            response_format=args.format, speed=args.speed, instructions=args.instructions,
            chunk_bytes=args.chunk_bytes, timeout_s=args.timeout_s, stream_format=args.stream_format,
            voice_object=voice_object,
            extra_body=request_extra_body(send_stream, args.lang_code, args.extra_body),
            stream_field_auto=send_stream and args.stream_field is None,
        )
        told: Timings | None = None
        try:
            playback = asyncio.run(_play(args, request, pieces))
            if args.captions is not None and builtin is not None and len(pieces) == 1:
                told = _told_timings(request)  # while the built-in server still runs
        except KeyboardInterrupt:
            print("voicegui: stopped", file=sys.stderr)
            return EXIT_FAILED
    finally:
        if builtin is not None and not isinstance(builtin, BuiltinAddress):
            builtin.stop()  # this process's server; the forked one stops with main
    assert playback is not None  # a fresh player always starts what it is given
    if playback.metrics is None:
        print(f"voicegui: {terminal_safe(str(playback.failure))}", file=sys.stderr)
        return EXIT_FAILED
    metrics, session = playback.metrics, playback.session
    if args.out is not None:
        from voicegui.wavfile import write_wav

        write_wav(args.out, session.played_audio, session.sample_rate or 24000)
    if args.captions is not None:
        if not metrics.completed:  # the text's words would be squeezed into the part that played
            print(f"voicegui: the captions were not written to {args.captions}: the speech did not play to its "
                  "end", file=sys.stderr)
        elif not _write_captions(args.captions, args.text, session.played_audio, session.sample_rate or 24000,
                                 told):
            return EXIT_FAILED
    if args.json:
        data = metrics.to_json_dict()
        fm = session.fetch_marks
        # What the server reported in its speech.audio.done event (sse only), for the first request of a text
        # long enough to be split (the later requests' marks are not kept).
        data.update(stream_format=args.stream_format, usage=fm.usage, sse_ignored=fm.sse_ignored,
                    stream_field_dropped=fm.stream_field_dropped)
        if len(pieces) > 1:
            data["usage_covers"] = f"request 1 of {len(pieces)}"
        print(redact(json.dumps(data)))  # json escapes control characters itself
    if metrics.format_warning:
        print(f"voicegui: {terminal_safe(metrics.format_warning)}", file=sys.stderr)
    if metrics.pcm_rate_source == "assumed" and builtin is None and not is_openai_url(base_url):
        print(f"voicegui: {UNANNOUNCED_PCM_RATE}", file=sys.stderr)
    if metrics.error:
        print(f"voicegui: {terminal_safe(metrics.error)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


async def _play(args: argparse.Namespace, request: SpeechRequest, pieces: list[str]) -> Playback | None:
    """Play `request` (and the further `pieces` of its text) through a fresh Player. The request goes out as
    soon as the SDK is in (stream/early_fetch.py); numpy, PortAudio and the decoders are imported on a worker
    thread after that, while the server works, and the answer waits in memory until the session takes it."""
    import asyncio
    import dataclasses
    import importlib

    from voicegui.stream.realtime import uses_realtime

    early = None
    if not uses_realtime(request):  # the Realtime API's websocket is the session's own (fetch_realtime)
        from voicegui.stream.early_fetch import EarlyFetch

        early = EarlyFetch(request)
    try:
        if early is not None:
            # The request first: imports on another thread would share the GIL with it. Until it is written for
            # another server, whose answer takes a round trip and its synthesis; only until the SDK has built it
            # for the built-in voices, whose process answers within tens of ms: the audio stack is what the first
            # sound waits for then.
            await early.sent(written=args.base_url is not None)
        # PortAudio's start (ALSA opens every PCM its configuration defines to list the devices: 35-90 ms, in C
        # without the GIL) on a second worker, beside numpy's and the player's imports. A failure there is
        # raised again by the player's own import of sounddevice, which the usual handlers report.
        portaudio = asyncio.ensure_future(asyncio.to_thread(import_quietly, "sounddevice"))
        await asyncio.to_thread(lambda: [importlib.import_module(m) for m in SPEAK_AFTER_REQUEST])
        await portaudio
        # Nothing more is loaded for good from here on: later full collections need not walk it while the
        # callback (Python, on the GIL) plays.
        freeze_loaded("speak's audio stack")
        from voicegui.stream.output import OutputConfig
        from voicegui.stream.player import Player
        from voicegui.stream.session import SpeakOptions

        options = SpeakOptions(
            request=request, continuation=tuple(dataclasses.replace(request, text=p) for p in pieces[1:]),
            prebuffer_ms=args.prebuffer_ms, max_buffer_s=args.max_buffer_s,
            output=OutputConfig(device=args.device, latency=args.latency, blocksize=args.blocksize,
                                volume=args.volume),
            keep_played=args.out is not None or args.captions is not None, pcm_rate=args.pcm_rate,
            source=None if early is None else early.source,
            started_at=None if early is None else early.started,
        )
        return await Player().play(options, kind="cli", record=False)
    finally:
        if early is not None:
            await early.aclose()  # nothing left to end after a session took it; else the request is ended


def _told_timings(request: SpeechRequest) -> Timings | None:
    """The built-in server's own timings of the request's text (espeak-ng: each word's start from the engine;
    hibari: its sentences' bounds), or None (one log line) when it gives none."""
    import asyncio

    from voicegui.features.captioned import CaptionedError, fetch_timings

    try:
        return asyncio.run(fetch_timings(request.base_url, request.api_key, request.model, request.voice,
                                         request.text, 1.0 if request.speed is None else request.speed))
    except CaptionedError as exc:
        logging.getLogger(__name__).info("captions estimated from the pauses: %s", exc)
        return None


def _write_captions(path: Path, text: str, played: np.ndarray, rate: int, told: Timings | None = None) -> bool:
    """Captions of `text` as `played` (the samples the device played): `told` when they describe that audio
    (a second synthesis of a voice that is not deterministic does not), else estimated from its pauses; False
    (and one sentence) on failure."""
    from voicegui.features.captions import write_captions
    from voicegui.features.timings import describes, estimate

    timings = told if told is not None and describes(told, len(played) / rate) else estimate(text, played, rate)
    try:
        write_captions(timings, path)
    except OSError as exc:
        print(f"voicegui: the captions could not be written to {path}: {exc.strerror or exc}; choose another "
              "--captions path", file=sys.stderr)
        return False
    return True


def _api_key(args: argparse.Namespace) -> tuple[bool, str | None]:
    """(usable, the API key of speak/lineup or None when none is given), with the --api-key warning printed;
    usable is False (after one line on stderr) when the key file cannot be used. The key is redacted from
    everything printed and logged from now on."""
    from voicegui import crash

    try:
        key, warnings = api_key_from(args.api_key, args.api_key_file)
    except KeyFileError as exc:
        print(f"voicegui: {exc}", file=sys.stderr)
        return False, None
    for warning in warnings:
        print(f"voicegui: {warning}", file=sys.stderr)
    crash.register_secret(key)
    return True, key


def _warm_requests(base_url: str | None) -> None:
    """After the preload's imports: what the request itself would import, then, for an https server, the TLS
    context (a plain http server's client, the built-in voices' too, needs no CA store: tls_contexts.py)."""
    from voicegui.stream.fetch import import_speech_modules
    from voicegui.tls_contexts import needs_ca_store, warm_tls_context

    try:
        import_speech_modules()
    except ImportError as exc:  # imported again by the request, which reports it
        log.debug("preloading the speech request's modules failed (%s)", exc)
    if base_url is not None and needs_ca_store(base_url):
        warm_tls_context()


def run_devices() -> int:
    from voicegui.stream.output import OutputError, output_devices

    try:
        devices = output_devices()
    except OutputError as exc:
        print(f"voicegui: cannot list audio devices: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for dev in devices:
        mark = "*" if dev.is_default else " "
        print(f"{mark} {dev.index:3d}  {dev.name}  ({int(dev.default_samplerate)} Hz)")
    if not devices:
        print("voicegui: no audio output device found", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    single_blas_thread()  # before numpy's first import, here or in a child (the built-in voices' process)
    command = command_of(argv)
    # An unknown word (a typo) is not the window's command: argparse says what the commands are, instead of
    # a running window being raised silently.
    if first_word(argv) in (None, "speak", "stop"):
        handed = handoff(argv, command)  # a running window takes it: nothing below is imported
        if handed is not None:
            return handed
    forked: BuiltinProcess | OSError | None = None
    if command == "speak" and not {"-h", "--help"} & set(argv):
        from voicegui.cli.builtin_process import BuiltinProcess, speak_args

        said = speak_args(argv, argv.index("speak"))
        # Before any thread starts (a fork copies one thread and every lock as it was): not where main is
        # called by a program that runs threads of its own, e.g. a test; the voices then start in this process.
        if said.builtin and threading.active_count() == 1:
            try:
                forked = BuiltinProcess.fork(said.voice, said.verbose)
            except OSError as exc:
                forked = exc
        import_in_background(SPEAK_PRELOAD, then=lambda: _warm_requests(said.base_url))
    try:
        return _run(argv, command, forked)
    except KeyboardInterrupt:
        if command != "speak":
            raise
        # Ctrl+C before the speech started (the voices starting, the selection being read): as during it.
        print("voicegui: stopped", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if forked is not None and not isinstance(forked, OSError):
            forked.stop()


def _run(argv: list[str], command: str | None, forked: BuiltinProcess | OSError | None) -> int:
    parser = build_parser({command} if command else ())
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, window=args.command is None)
    from voicegui import crash

    # Uncaught errors go to a rotating log file (keys redacted), never as a traceback in the user's face.
    crash.install_excepthook(None)
    if args.install_desktop or args.uninstall_desktop:
        from voicegui.cli.desktop_install import run_desktop_command

        return run_desktop_command(uninstall=args.uninstall_desktop)
    if args.command == "speak":
        return run_speak(args, forked)
    if args.command == "serve":
        from voicegui.cli.serve import run_serve

        return run_serve(args)
    if args.command == "bench" and args.window:
        from voicegui.cli.bench_window import run_window_bench

        return run_window_bench(args)
    if args.command == "bench":
        from voicegui.cli.bench import run_bench

        return run_bench(args)
    if args.command == "lineup":
        from voicegui.cli.lineup import run_lineup

        usable, key = _api_key(args)
        if not usable:
            return EXIT_USAGE
        args.api_key, args.api_key_file = key, None
        with safe_output():  # lineup prints each voice's error as the server worded it
            return run_lineup(args)
    if args.command == "voices":
        from voicegui.cli.voices import run_voices

        usable, key = _api_key(args)
        if not usable:
            return EXIT_USAGE
        return run_voices(args, key)
    if args.command == "devices":
        return run_devices()
    from voicegui.ui.display import missing_display

    no_display = missing_display(os.environ)
    if no_display is not None:
        print(f"voicegui: {no_display}", file=sys.stderr)
        return EXIT_FAILED
    from voicegui.ui.app import run_window

    return run_window(on_platform_failure=_no_window)


def _no_window(sentence: str) -> NoReturn:
    """Qt could not start any display platform: say so and end here (Qt would abort as soon as we returned)."""
    print(f"voicegui: {sentence}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(EXIT_FAILED)
