"""How fast the window starts and how much memory it holds idle: `python -m voicegui.ui.startup_bench`.

Each run launches the real app (`python -m voicegui -v`, the window on the Qt platform of this session, or
`offscreen` when there is no display) with private settings and history directories, and reads its log as it
comes: "voicegui ready" (the window is shown) and "built-in voices ready" (the default voice is loaded), in
seconds after the launch on this process's time.monotonic(). Then it waits for "start-up done" (the window
has imported all it imports before the user does anything: the openai SDK comes at the first key press, click
or pointer on Speak, ui/first_intent.py, and no input reaches the window here), then `--idle-s` more, reads
the process's memory from /proc/<pid>/smaps_rollup (Linux only: resident, proportional and unique set sizes;
RSS is the goal's measure, USS/PSS say how much of it other processes share); with `--smaps N`, also where it
goes: the N mappings holding the most, per file, [heap] and [anon], from /proc/<pid>/smaps (`--smaps-by-package`
sums each Python package's files). Then it ends the app with SIGINT (as Ctrl+C). Runs are sequential; the
figures are medians with min-max, so run it on a quiet machine for the README.

Threads: the main thread runs the launches; one reader thread per launch hands the child's log lines on
(so a hung child is noticed by a timeout); the app runs in a child process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)

WINDOW_READY = "voicegui ready"
VOICES_READY = "built-in voices ready"
STARTUP_DONE = "start-up done"  # ui/app.py's STARTUP_DONE (not imported: that would import Qt here)
GOALS = {"window_s": 1.0, "voices_s": 1.5, "rss_mb": 200.0}  # issue 17: shown, default voice ready, idle RSS
LAUNCH_TIMEOUT_S = 60.0
FAILURES = ("built-in voices unavailable", "default built-in voice unavailable")  # ui/app.py's warnings


def _read_lines(stream: TextIO, out: queue.Queue[str | None]) -> None:
    """Hand on each line of `stream`, then None at its end (runs in the reader thread)."""
    for line in stream:
        out.put(line)
    out.put(None)


def memory_mb(pid: int) -> dict[str, float]:
    """Process `pid`'s memory in MB from /proc/<pid>/smaps_rollup: {"rss_mb", "pss_mb", "uss_mb"} (USS: its
    private pages, clean and dirty); OSError if /proc does not have them."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, value = line.partition(":")
        fields[name] = int(value.split()[0]) / 1024
    try:
        return {"rss_mb": fields["Rss"], "pss_mb": fields["Pss"],
                "uss_mb": fields["Private_Clean"] + fields["Private_Dirty"]}
    except KeyError as exc:
        raise OSError(f"/proc/{pid}/smaps_rollup has no {exc.args[0]} line") from None


_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")


def smaps_breakdown(pid: int) -> dict[str, dict[str, float]]:
    """Process `pid`'s memory per mapping from /proc/<pid>/smaps, in MB: {name: {"rss_mb", "pss_mb"}}, where
    a name is the backing file, or the kernel's name ([heap], [stack], ...), or "[anon]" for anonymous memory
    (malloc arenas of threads, Python's object arenas, numpy buffers). A file mapped in several pieces is one
    entry. OSError if /proc does not have it."""
    out: dict[str, dict[str, float]] = {}
    entry: dict[str, float] | None = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        header = _MAPPING.match(line)
        if header:
            name = header.group(1).strip() or "[anon]"
            entry = out.setdefault(name, {"rss_mb": 0.0, "pss_mb": 0.0})
        elif entry is not None and line.startswith(("Rss:", "Pss:")):
            entry["rss_mb" if line.startswith("Rss:") else "pss_mb"] += int(line.split()[1]) / 1024
    return out


_PACKAGE = re.compile(r"/site-packages/([^/]+)/")


def by_package(breakdown: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """`breakdown` with the files of each installed Python package (under site-packages: its modules, its
    bundled libraries such as PySide6's Qt or av.libs' FFmpeg) summed as one "<package>/" entry, and the
    standard library's extension modules as "lib-dynload/"; system libraries and the rest stay per file."""
    out: dict[str, dict[str, float]] = {}
    for name, memory in breakdown.items():
        package = _PACKAGE.search(name)
        key = f"{package.group(1)}/" if package else "lib-dynload/" if "/lib-dynload/" in name else name
        entry = out.setdefault(key, {"rss_mb": 0.0, "pss_mb": 0.0})
        entry["rss_mb"] += memory["rss_mb"]
        entry["pss_mb"] += memory["pss_mb"]
    return out


def smaps_table(breakdowns: list[dict[str, dict[str, float]]], top: int) -> str:
    """A Markdown table of the `top` mappings with the most resident memory (median over the runs'
    `breakdowns`; a mapping missing from a run counts 0 there), then the rest summed, then the total."""
    names = {name for breakdown in breakdowns for name in breakdown}

    def median(name: str, key: str) -> float:
        return statistics.median(b.get(name, {}).get(key, 0.0) for b in breakdowns)

    ranked = sorted(names, key=lambda name: median(name, "rss_mb"), reverse=True)
    lines = ["| mapping | RSS (MB) | PSS (MB) |", "|---|---|---|"]
    lines += [f"| {name} | {median(name, 'rss_mb'):.1f} | {median(name, 'pss_mb'):.1f} |" for name in ranked[:top]]
    rest = ranked[top:]
    lines.append(f"| {len(rest)} others | {sum(median(n, 'rss_mb') for n in rest):.1f} | "
                 f"{sum(median(n, 'pss_mb') for n in rest):.1f} |")
    totals = [sum(m["rss_mb"] for m in b.values()) for b in breakdowns]
    lines.append(f"| total (median of the runs) | {statistics.median(totals):.1f} | "
                 f"{statistics.median(sum(m['pss_mb'] for m in b.values()) for b in breakdowns):.1f} |")
    return "\n".join(lines)


def launch_once(idle_s: float, cache: Path, python: str = sys.executable, smaps: bool = False) -> dict:
    """One launch of the window with `cache` as its cache directory (what an earlier launch left there is
    used, as on a user's machine): {"window_s", "voices_s", "rss_mb", "pss_mb", "uss_mb", "error"} (None for
    what did not happen), and with `smaps` also "smaps": the idle window's smaps_breakdown()."""
    row: dict = {"window_s": None, "voices_s": None, "rss_mb": None, "pss_mb": None, "uss_mb": None, "error": None}
    with tempfile.TemporaryDirectory(prefix="voicegui-startup-") as tmp:
        # A runtime directory of its own too: a voicegui window the user has open would otherwise take the
        # launch over (one window per user) and the launch would exit at once.
        env = dict(os.environ, VOICEGUI_CONFIG_DIR=str(Path(tmp) / "config"),
                   VOICEGUI_CACHE_DIR=str(cache), VOICEGUI_RUNTIME_DIR=str(Path(tmp) / "run"))
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM")):
            env["QT_QPA_PLATFORM"] = "offscreen"
        started = time.monotonic()
        proc = subprocess.Popen([python, "-m", "voicegui", "-v"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stderr, lines), daemon=True,
                                  name="voicegui-startup-log")
        reader.start()
        try:
            while True:  # the child's log, line by line as it is written
                try:
                    line = lines.get(timeout=max(0.0, started + LAUNCH_TIMEOUT_S - time.monotonic()))
                except queue.Empty:
                    awaited = STARTUP_DONE if row["voices_s"] is not None else VOICES_READY
                    row["error"] = f"no '{awaited}' within {LAUNCH_TIMEOUT_S:.0f} s"
                    break
                at = time.monotonic() - started
                if line is None:
                    row["error"] = f"the window exited with {proc.wait()} before '{STARTUP_DONE}'"
                    break
                if WINDOW_READY in line and row["window_s"] is None:
                    row["window_s"] = at
                elif VOICES_READY in line:
                    row["voices_s"] = at
                elif STARTUP_DONE in line and row["voices_s"] is not None:
                    break
                elif any(failure in line for failure in FAILURES):
                    row["error"] = line.strip()
                    break
            if proc.poll() is None and row["error"] is None:
                time.sleep(idle_s)
                row.update(memory_mb(proc.pid))
                if smaps:
                    row["smaps"] = smaps_breakdown(proc.pid)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    return row


def _span(values: list[float], digits: int = 2) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def summarize(rows: list[dict], idle_s: float, first: dict | None = None) -> str:
    """A Markdown table of the medians (min–max) of `rows` against the goals, and the first launch's figures
    (`first`: an empty cache, as right after installing) in their own column."""
    def cell(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    if first is not None:
        lines = ["| measure | later launches, median (min–max) | first launch (empty cache) | goal |",
                 "|---|---|---|---|"]
    else:
        lines = ["| measure | median (min–max) | goal |", "|---|---|---|"]
    names = {"window_s": "window shown (s after launch)", "voices_s": "default voice ready (s after launch)",
             "rss_mb": f"resident memory (RSS) {idle_s:.0f} s after the start-up (MB)",
             "pss_mb": "proportional set size (PSS, MB)", "uss_mb": "unique set size (USS, MB)"}
    for key, name in names.items():
        values = [r[key] for r in rows if r.get(key) is not None]
        digits = 0 if key.endswith("_mb") else 2
        first_cell = "" if first is None else f" {cell(first.get(key), digits)} |"
        goal = f"≤ {GOALS[key]:g}" if key in GOALS else ""
        lines.append(f"| {name} | {_span(values, digits)} |{first_cell} {goal} |")
    errors = [r["error"] for r in ([first] if first else []) + rows if r["error"]]
    if errors:
        lines.append(f"\n{len(errors)} of {len(rows)} runs failed, first: {errors[0]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voicegui.ui.startup_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5,
                        help="launches after the first, one after another (default: 5); the first launch, on an "
                             "empty cache (the built-in voice's tables are built then), is reported apart")
    parser.add_argument("--idle-s", type=float, default=5.0,
                        help="seconds idle after the start-up before the memory is read (default: 5)")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON instead of the table")
    parser.add_argument("--smaps", type=int, default=0, metavar="N",
                        help="also list the N mappings (shared libraries, [heap], [anon], ...) holding the most "
                             "resident memory in the later launches, from /proc/<pid>/smaps")
    parser.add_argument("--smaps-by-package", action="store_true",
                        help="with --smaps: sum each Python package's files (modules and bundled libraries) as one")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.idle_s < 0 or args.smaps < 0:
        parser.error("--runs must be at least 1, --idle-s and --smaps not negative")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    with tempfile.TemporaryDirectory(prefix="voicegui-startup-cache-") as cache:
        first = launch_once(args.idle_s, Path(cache))
        log.info("first launch (empty cache): %s", first)
        for run in range(args.runs):
            row = launch_once(args.idle_s, Path(cache), smaps=args.smaps > 0)
            log.info("run %d: %s", run, {k: v for k, v in row.items() if k != "smaps"})
            rows.append(row)
    out = json.dumps({"first": first, "later": rows}, indent=1) if args.json else summarize(rows, args.idle_s, first)
    breakdowns = [row["smaps"] for row in rows if row.get("smaps")]
    if args.smaps_by_package:
        breakdowns = [by_package(breakdown) for breakdown in breakdowns]
    if breakdowns and not args.json:
        out += "\n\n" + smaps_table(breakdowns, args.smaps)
    sys.stdout.write(out + "\n")
    return 0 if all(r["error"] is None for r in [first, *rows]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
