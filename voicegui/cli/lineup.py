"""`voicegui lineup`: speak one text with several voices in turn, headless, and write a report.

    voicegui lineup --voices heart,espeak:en-us,espeak:en-gb --text "Hello there." --report out.html
    voicegui lineup --voices alloy,nova/mp3 --preset numbers --base-url https://api.openai.com/v1 --csv out.csv

Without --base-url the built-in offline voices are started for this run (like `voicegui speak`). A voice may
carry its own format as "voice/fmt". Every voice is checked against the server's voice list first (when the
server has one): an unknown voice stops the run before anything is spoken. Each voice is warmed by a short
untimed request before it is measured (--no-warmup: measure the cold request, engine loading included); the
table shows both. The HTML report includes the A/B tab's votes about these voices (features/votes.py). The
results table goes to stdout, progress and errors to stderr; the exit code is 1 if any voice is unknown or
failed, 2 for a usage error.

Threads: everything on the main thread; the line-up runs on a plain asyncio loop there (the PortAudio
callback thread and the built-in server's thread are started by the stream package and the built-in server).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import os
import re
import sys
from pathlib import Path

from voicegui.cli.args import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    SPEED_HELP,
    add_playback_arguments,
    add_server_arguments,
    speed_problem,
    start_builtin,
)
from voicegui.formats import FORMATS

REMOTE_MODEL = "tts-1"
_BLEND_WEIGHT = re.compile(r"\(\s*[\d.]+\s*\)$")


def add_lineup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voices", required=True,
                   help="comma-separated voice ids, each optionally with its own format: heart,espeak:en-us/mp3")
    p.add_argument("--text", default=None, help="the text every voice speaks (default: --preset)")
    p.add_argument("--preset", default=None,
                   help="a text preset by name (pangram, numbers, paragraph, question, or your own in "
                        "presets.json); default pangram when --text is not given")
    p.add_argument("--report", type=Path, default=None, help="write a self-contained HTML report here")
    p.add_argument("--csv", type=Path, default=None, help="write the results as CSV here")
    p.add_argument("--report-audio", choices=("played", "original"), default="played",
                   help="embed what was played (WAV, default) or the bytes as the server sent them")
    p.add_argument("--title", default=None, help="the report's title")
    p.add_argument("--format", default="pcm", choices=FORMATS, help="response format (default pcm)")
    add_server_arguments(p)
    p.add_argument("--model", default=None, help=f"model id (default: builtin, or {REMOTE_MODEL} with --base-url)")
    p.add_argument("--speed", type=float, default=None, help=SPEED_HELP)
    p.add_argument("--timeout-s", type=float, default=30.0)
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="measure each voice's first request as is (engine loading included) instead of warming "
                        "it with a short untimed request first")
    p.add_argument("--match-loudness", action="store_true",
                   help="turn each voice louder than -23 LUFS (EBU R128, measured on its warm-up) down to it")
    p.add_argument("--history", action="store_true",
                   help="also record every voice in the history (as the window does)")
    add_playback_arguments(p)


def _err(msg: str) -> None:
    print(f"voicegui: {msg}", file=sys.stderr)


def _text(args: argparse.Namespace) -> str | None:
    from voicegui.features.lineup import load_presets

    if args.text is not None:
        return args.text
    presets = load_presets()
    name = args.preset or "pangram"
    if name not in presets:
        _err(f"no text preset {name!r}; presets: {', '.join(sorted(presets))}")
        return None
    return presets[name]


def _voice_parts(voice: str) -> list[str]:
    """A Kokoro blend "af_bella(2)+af_sky(1)" is known when each of its voices is."""
    return [_BLEND_WEIGHT.sub("", part).strip() for part in voice.split("+")] if "+" in voice else [voice]


def unknown_voices(wanted: list[str], offered: list[str]) -> list[str]:
    """Messages for the voices of `wanted` that `offered` does not list (with a suggestion when close)."""
    known = set(offered)
    msgs = []
    for voice in wanted:
        missing = [p for p in _voice_parts(voice) if p not in known]
        for part in missing:
            close = difflib.get_close_matches(part, offered, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            msgs.append(f"unknown voice {part!r}{hint}; the server offers {len(offered)} voices, e.g. "
                        f"{', '.join(offered[:8])}")
    return msgs


async def _remote_voices(base_url: str, api_key: str, timeout_s: float) -> list[str] | None:
    """The server's own voice list, or None when it has none or cannot be asked: then nothing is checked, the
    server will say so itself (providers.list_voices invents no names for a server without a list)."""
    from voicegui.providers import ProviderError, list_voices

    try:
        voices = await list_voices(base_url, api_key, timeout_s=timeout_s)
    except ProviderError:
        return None
    return [v.id for v in voices] or None


def format_table(results: list) -> str:
    """A plain-text table of the results (the CLI's stdout)."""
    header = ("#", "voice", "format", "TTFA ms", "cold ms", "played s", "underruns", "bytes", "result")
    rows = [header]
    for r in results:
        cold = getattr(r, "cold_ttfa_ms", None)
        rows.append((str(r.index + 1), r.label, r.format, "n/a" if r.ttfa_ms is None else f"{r.ttfa_ms:.0f}",
                     "n/a" if cold is None else f"{cold:.0f}",
                     f"{r.duration_s:.2f}", str(r.underruns), str(r.bytes), "ok" if r.ok else "FAILED"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i in (1, 2, 8) else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    note = ("\nTTFA: measured after a short untimed warm-up request per voice; cold: that warm-up's first byte "
            "(engine loading included).")
    return "\n".join(line.rstrip() for line in lines) + (note if any(r[4] != "n/a" for r in rows[1:]) else "")


def run_lineup(args: argparse.Namespace) -> int:
    """Run the line-up described by `args`; see the module docstring for output and exit codes."""
    from voicegui.features.lineup import Lineup, Target, parse_entries
    from voicegui.stream.output import OutputConfig

    text = _text(args)
    if text is None:
        return EXIT_USAGE
    if not text.strip():
        _err("nothing to say: the text is empty")
        return EXIT_USAGE
    entries = parse_entries(args.voices, args.format)
    if not entries:
        _err("--voices names no voice")
        return EXIT_USAGE
    if not args.timeout_s > 0:
        _err(f"--timeout-s must be positive, not {args.timeout_s}")
        return EXIT_USAGE
    problem = speed_problem(args.speed)
    if problem:
        _err(problem)
        return EXIT_USAGE

    builtin = None
    try:
        if args.base_url is None:
            builtin, problem = start_builtin()
            if builtin is None:
                _err(problem)
                return EXIT_FAILED
            # The per-run token, never $OPENAI_API_KEY: the user's real key has no business on this server.
            target = Target(builtin.base_url, builtin.token, args.model or builtin.default_model, "builtin")
            offered: list[str] | None = [v.id for v in builtin.voices()]
        else:
            api_key = args.api_key or os.environ.get("OPENAI_API_KEY") or "none"
            target = Target(args.base_url, api_key, args.model or REMOTE_MODEL, "custom")
            offered = asyncio.run(_remote_voices(args.base_url, api_key, min(args.timeout_s, 10.0)))
        if offered is not None:
            problems = unknown_voices([e.voice for e in entries], offered)
            if problems:
                for msg in problems:
                    _err(msg)
                return EXIT_FAILED

        history = None
        if args.history:
            from voicegui.features.history import HistoryStore

            try:
                history = HistoryStore()
            except OSError as exc:
                _err(f"cannot open the history ({exc.strerror or exc}); run without --history or fix "
                     f"{exc.filename or 'the cache directory'}")
                return EXIT_FAILED
            if history.notice:
                _err(history.notice)  # the damage was set aside: the line-up goes on with the usable entries

        def on_start(index: int) -> None:
            print(f"[{index + 1}/{len(entries)}] {entries[index].voice} ...", file=sys.stderr, flush=True)

        lineup = Lineup(
            text, entries, target, response_format=args.format, speed=args.speed, chunk_bytes=args.chunk_bytes,
            timeout_s=args.timeout_s, prebuffer_ms=args.prebuffer_ms, max_buffer_s=args.max_buffer_s,
            output=OutputConfig(device=args.device, latency=args.latency, blocksize=args.blocksize,
                                volume=args.volume),
            on_start=on_start, history=history, pcm_rate=args.pcm_rate, warmup=args.warmup,
            match_loudness=args.match_loudness,
        )
        try:
            results = asyncio.run(lineup.run())
        except KeyboardInterrupt:
            _err("stopped")
            return EXIT_FAILED
    finally:
        if builtin is not None:
            builtin.stop()

    print(format_table(results))
    try:
        if args.report is not None:
            from voicegui.features.report import export_html
            from voicegui.features.votes import load_votes

            export_html(results, args.report, title=args.title or "voicegui line-up", text=text,
                        audio=args.report_audio, votes=load_votes())
        if args.csv is not None:
            from voicegui.features.report import export_csv

            export_csv(results, args.csv)
    except OSError as exc:
        _err(f"cannot write the report: {exc}")
        return EXIT_FAILED
    failed = [r for r in results if not r.ok]
    for r in failed:
        _err(f"{r.label}: {r.error}")
    return EXIT_FAILED if failed else EXIT_OK

