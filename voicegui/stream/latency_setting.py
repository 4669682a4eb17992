"""The output latency setting: 'low', 'high' or seconds, as the command line and the window's settings take it.

Its own module, not stream.output's: checking `--latency` while the command line is parsed must not import
numpy and PortAudio (`voicegui speak` sends its request before it imports the audio stack).

Threads: pure functions, any thread.
"""

from __future__ import annotations


def parse_latency(value: str) -> str | float:
    """'low', 'high' or a number of seconds, as given on the command line or in settings."""
    if value in ("low", "high"):
        return value
    try:
        seconds = float(value)
    except ValueError as exc:
        raise ValueError(f"latency must be low, high or seconds, not {value!r}") from exc
    if not 0 < seconds <= 2:
        raise ValueError(f"latency must be between 0 and 2 seconds, not {seconds}")
    return seconds
