"""`voicegui voices`: the voices (and with --models the models) a provider offers, as a table or --json.

    voicegui voices                                   # the built-in offline voices, started for this run
    voicegui voices --base-url http://127.0.0.1:8880/v1 --models
    voicegui voices --base-url https://api.openai.com/v1 --api-key-file ~/.openai-key --json
    voicegui voices --base-url http://127.0.0.1:8880/v1 --profile  # what the server is and accepts

The lists come from voicegui.providers (list_voices, list_models), over HTTP like the window's: without
--base-url from a BuiltinServer started for this run (lazy: no engine is loaded) and stopped before
returning. A server that offers no voice list gets no invented one: the list is empty, the reason goes to
stderr and the exit code is 1; no model list gets no OpenAI models either (the reason is printed under the
table, or is "models_reason" in the JSON). --profile adds the server profile (voicegui.server_profile: speed
range, the stream flag, formats, Realtime, pcm rates; what is unverified says so). Errors are one
`voicegui:` line on stderr with cli.args' exit codes; what a server sent (names, messages) is printed
through cli.args.terminal_safe, or JSON-escaped with --json.

Threads: everything on the main thread; the requests run on a plain asyncio loop there (the built-in
server runs its own thread).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from voicegui.cli.args import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_server_arguments,
    positive_float,
    start_builtin,
    terminal_safe,
)
from voicegui.crash import redact
from voicegui.providers import ModelInfo, ModelList, ProviderError, VoiceList, detect_profile, list_voices
from voicegui.server_profile import ServerProfile


def add_voices_arguments(p: argparse.ArgumentParser) -> None:
    add_server_arguments(p)
    p.add_argument("--model", default="",
                   help="the model the voices are for (OpenAI's Realtime models have fewer voices)")
    p.add_argument("--models", action="store_true", help="list the models too")
    p.add_argument("--profile", action="store_true",
                   help="say what the server is and accepts (speed range, \"stream\": true, formats, Realtime)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")
    p.add_argument("--timeout-s", type=positive_float, default=10.0,
                   help="give up on the server after this long, per list (default 10)")


def _err(msg: str) -> None:
    print(f"voicegui: {terminal_safe(msg)}", file=sys.stderr)


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    return "\n".join(f"{a.ljust(widths[0])}  {b}".rstrip() for a, b in [header, *rows])


def format_voices(voices: VoiceList, models: list[ModelInfo] | None) -> str:
    """The plain-text tables of stdout: voices (id, name), then the models (id, shutdown date) if given."""
    out = [_table(("voice", "name"), [(v.id, "" if v.name == v.id else v.name) for v in voices])]
    if models is not None:
        out.append(_table(("model", "shutdown"), [(m.id, m.shutdown_date.isoformat() if m.shutdown_date else "")
                                                  for m in models]))
        reason = getattr(models, "reason", None)
        if reason:
            out[-1] += "\n" + reason
    return "\n\n".join(out)


def voices_json(voices: VoiceList, models: list[ModelInfo] | None) -> dict[str, Any]:
    """The --json object: voices [{id, name}], reason (why the list is empty, else null), models if asked."""
    out: dict[str, Any] = {"voices": [{"id": v.id, "name": v.name} for v in voices], "reason": voices.reason}
    if models is not None:
        out["models"] = [{"id": m.id, "shutdown_date": m.shutdown_date.isoformat() if m.shutdown_date else None}
                         for m in models]
        out["models_reason"] = getattr(models, "reason", None)
    return out


async def _fetch(base_url: str, key: str | None, model: str, with_models: bool,
                 timeout_s: float) -> tuple[VoiceList, ModelList | None, ServerProfile | None]:
    if not with_models:
        return await list_voices(base_url, key, model, timeout_s=timeout_s), None, None
    found = await detect_profile(base_url, key, model, timeout_s=timeout_s)
    return found.voices, found.models, found.profile


def run_voices(args: argparse.Namespace, key: str | None) -> int:
    """List what `args` asks for; `key` is the API key from --api-key/--api-key-file/$OPENAI_API_KEY (main
    resolves it, warnings printed and redacted) or None. See the module docstring for output and exit codes."""
    builtin = None
    api_key: str | None
    if args.base_url is None:
        builtin, problem = start_builtin()
        if builtin is None:
            _err(problem)
            return EXIT_FAILED
        # The per-run token, never $OPENAI_API_KEY: the user's real key has no business on this server.
        base_url, api_key = builtin.base_url, builtin.token
    else:
        from voicegui.stream.fetch import insecure_http_warning

        base_url, api_key = args.base_url.strip(), key
        if not base_url:
            _err("--base-url is empty")
            return EXIT_USAGE
        warning = insecure_http_warning(base_url)
        if warning:
            _err(warning)
    try:
        voices, models, profile = asyncio.run(_fetch(base_url, api_key, args.model, args.models or args.profile,
                                                     args.timeout_s))
    except ProviderError as exc:
        _err(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("stopped")
        return EXIT_FAILED
    finally:
        if builtin is not None:
            builtin.stop()
    shown_models = models if args.models else None
    if args.json:
        out = voices_json(voices, shown_models)
        if args.profile and profile is not None:
            out["profile"] = {**profile.to_json(), "summary": profile.summary()}
        print(redact(json.dumps(out)))  # json escapes control characters itself
    else:
        text = format_voices(voices, shown_models)
        if args.profile and profile is not None:
            text += "\n\nserver: " + profile.summary()
        print(terminal_safe(text))
    if not voices:
        _err(voices.reason or f"{base_url} lists no voices")
        return EXIT_FAILED
    return EXIT_OK
