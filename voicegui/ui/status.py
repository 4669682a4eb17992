"""What the status line and the error banner say about the window's own Speaks: as plain strings, from a
Playback (no widgets here); and how the status line marks an error, so the window can tell a stale one (a new
Speak, replay or Test connection, or dismissing the banner, clears it).

Threads: any; the window calls these on the GUI thread.
"""

from __future__ import annotations

from voicegui.stream.player import Playback

ERROR_PREFIX = "Error: "
READY = "Ready"


def error_status(message: str) -> str:
    """The status line for an error also shown in the banner."""
    return f"{ERROR_PREFIX}{message}"


def is_error_status(text: str) -> bool:
    """The status line shows an error (which a new attempt or the banner's dismissal makes stale)."""
    return text.startswith(ERROR_PREFIX)


def started_message(playback: Playback) -> str:
    """The status line while a Speak (or a replay from history) plays."""
    req = playback.request
    if playback.kind == "replay":
        return f"Replaying from the history cache: {req.model} / {req.voice} / {req.response_format}"
    pieces = f" ({1 + len(playback.options.continuation)} pieces)" if playback.options.continuation else ""
    return f"Speaking{pieces}: {req.model} / {req.voice} / {req.response_format} from {req.base_url}"


def outcome(playback: Playback) -> tuple[str, list[str]]:
    """(status line, messages for the error banner) once a Speak has ended."""
    metrics = playback.metrics
    problems = [playback.failure] if playback.failure else []
    if metrics is None:
        return "Stopped", problems
    if metrics.error:
        problems.append(metrics.error)
    if metrics.format_warning:
        problems.append(metrics.format_warning)
    if metrics.stopped:
        return "Stopped", problems
    if metrics.ttfa_ms is None:
        return "Done", problems
    return f"Done: first sound after {metrics.ttfa_ms:.0f} ms, {metrics.audio_played_s:.1f} s played", problems
