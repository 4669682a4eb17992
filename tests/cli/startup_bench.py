"""Command to sound for `voicegui speak`, measured from outside the process (issue 17, item 3).

    python -m tests.cli.startup_bench --runs 10            # all modes
    python -m tests.cli.startup_bench --runs 2 --modes remote
    python -m tests.cli.startup_bench --tree . --tree /tmp/old   # two checkouts, runs interleaved
    python -m tests.cli.startup_bench --tree . --tree dist/voicegui/voicegui   # this checkout and the bundle

Each run starts `python -m voicegui speak` as a user would (a fresh process, `time.monotonic()` taken just
before Popen; CLOCK_MONOTONIC is one clock for every process on the machine) and reports:
- remote: launch -> the request arriving at a pcm server on 127.0.0.1 (aiohttp, in this process), and
  launch -> first sound;
- espeak / builtin: launch -> first sound with `--voice espeak:en-us` / the default neural voice (the
  built-in server runs inside the voicegui process, so only the sound is seen from here).
On a busy machine wall times mostly measure the neighbours, so the remote mode also reports the CPU time
(user + system, all threads, /proc/PID/stat) voicegui had used when its request arrived: the work it did to
get there, which the machine's load does not change much.
Bytecode: a user's install has voicegui's .pyc files (pip compiles at install; an editable checkout writes
them on first run), but with PYTHONDONTWRITEBYTECODE=1 every launch compiles voicegui's sources again (~0.3 s
of CPU measured here). So the children get a private pycache (PYTHONPYCACHEPREFIX in a temp folder) warmed
by one untimed run of each mode; --compile-each-run measures with the caller's environment instead.
"First sound" is the first sample above LOUD recorded from the private null sink's monitor
(tests/null_sink.py) by `voicegui bench`'s own sink recorder (voicegui/cli/bench_sink.py: parec with 10 ms
blocks, each sample stamped): it includes PulseAudio's own latency.

A benchmark, not a test: needs a quiet machine for numbers worth comparing; medians over --runs.

Threads: the pcm server runs on its own asyncio loop in a daemon thread; one daemon thread reads parec.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiohttp import web

from tests.null_sink import NullSinkError, start_null_sink, stop_null_sink
from voicegui.cli.bench_sink import SinkRecorder

REPO = Path(__file__).resolve().parents[2]
RATE = 24000
LOUD = 1000  # s16 magnitude above which a sample counts as sound (the tone peaks at ~9800)


def tone(seconds: float = 0.6) -> bytes:
    n = int(RATE * seconds)
    return struct.pack(f"<{n}h", *(int(9830 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(n)))


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds process `pid` has used so far (all its threads), or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PcmServer:
    """POST /v1/audio/speech -> 0.6 s of a 440 Hz tone as raw pcm; `arrivals` holds each request's monotonic
    time and `arrival_cpu` the CPU seconds process `watch_pid` had used by then (when set)."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.arrival_cpu: list[float | None] = []
        self.watch_pid: int | None = None
        self._body = tone()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        threading.Thread(target=self._run, name="startup-bench-server", daemon=True).start()
        if not self._ready.wait(10):
            raise RuntimeError("the pcm server did not start")

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        self.arrival_cpu.append(None if self.watch_pid is None else cpu_s(self.watch_pid))
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "audio/pcm", "X-Sample-Rate": str(RATE)})
        await resp.prepare(request)
        await resp.write(self._body)
        await resp.write_eof()
        return resp

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/audio/speech", self._speech)
        runner = web.AppRunner(app, handle_signals=False)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


MODES = {
    "remote": ["--model", "tts-1", "--voice", "alloy"],
    "espeak": ["--voice", "espeak:en-us"],
    "builtin": [],
}


def run_once(mode: str, server: PcmServer, rec: SinkRecorder, tree: Path = REPO,
             env: dict[str, str] | None = None) -> tuple[float | None, float | None, float | None, str]:
    """(launch -> request ms, CPU ms used by then, launch -> first sound ms, stderr if it failed) of one
    `voicegui speak` run from the checkout `tree` (`python -m` imports voicegui from the working directory) or
    by the executable `tree` (the one-folder app); None for what was not seen."""
    bundled = tree.is_file()  # the one-folder app's executable, not a checkout
    argv = [str(tree) if bundled else sys.executable, *([] if bundled else ["-m", "voicegui"]), "speak", "Hi.",
            *MODES[mode]]
    if mode == "remote":
        argv += ["--base-url", server.base_url]
    env = dict(os.environ if env is None else env, OPENAI_API_KEY="sk-bench")
    n_before = len(server.arrivals)
    time.sleep(0.3)  # the previous run's tail has left the sink
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=tree.parent if bundled else tree, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    server.watch_pid = proc.pid
    _, err = proc.communicate(timeout=120)
    time.sleep(0.2)  # parec's last blocks
    request = cpu = None
    if len(server.arrivals) > n_before:
        request = (server.arrivals[n_before] - t0) * 1000
        used = server.arrival_cpu[n_before]
        cpu = None if used is None else used * 1000
    sound = rec.first_sound_after(t0)
    return request, cpu, None if sound is None else (sound - t0) * 1000, err if proc.returncode else ""


def _median(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.0f} ms (min {min(xs):.0f}, max {max(xs):.0f}, n={len(xs)})" if xs else "—"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--modes", default="remote,espeak,builtin")
    parser.add_argument("--tree", action="append", type=Path, default=None,
                        help="a voicegui checkout to run, or the one-folder app's executable "
                             "(dist/voicegui/voicegui); repeat to compare (default: this checkout)")
    parser.add_argument("--compile-each-run", action="store_true",
                        help="no private pycache: run with this environment as it is (see the docstring)")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    trees: list[Path] = [t.resolve() for t in args.tree or [REPO]]
    try:
        start_null_sink()
    except NullSinkError as exc:
        print(f"null sink: {exc}", file=sys.stderr)
        return 1
    pycache = None
    # A runtime directory of its own: with a voicegui window open, `voicegui speak` would hand its request to
    # that window (measured by tests/e2e/handoff_bench.py) instead of starting as measured here.
    runtime = tempfile.mkdtemp(prefix="vg-bench-run-")
    env = dict(os.environ, VOICEGUI_RUNTIME_DIR=runtime)
    if not args.compile_each_run:
        pycache = tempfile.mkdtemp(prefix="voicegui-bench-pyc-")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    try:
        server, rec = PcmServer(), SinkRecorder(threshold=LOUD / 32768)
        rec.start()
        if pycache is not None:
            for tree in trees:
                for mode in modes:
                    run_once(mode, server, rec, tree, env)  # writes the .pyc files; not timed
        results: dict[tuple[Path, str], tuple[list[float], list[float], list[float]]] = {
            (t, m): ([], [], []) for t in trees for m in modes}
        for _ in range(args.runs):
            for tree in trees:
                for mode in modes:  # interleaved, so a busy spell on the machine hits every mode alike
                    request, cpu, sound, err = run_once(mode, server, rec, tree, env)
                    if err:
                        print(f"{tree} {mode}: failed: {err.strip()[-300:]}", file=sys.stderr)
                    if request is not None:
                        results[tree, mode][0].append(request)
                    if cpu is not None:
                        results[tree, mode][1].append(cpu)
                    if sound is not None:
                        results[tree, mode][2].append(sound)
        rec.stop()
        for tree in trees:
            print(tree)
            for mode in modes:
                requests, cpus, sounds = results[tree, mode]
                if mode == "remote":
                    print(f"  {mode:8s} launch -> request arrives: {_median(requests)}")
                    print(f"  {mode:8s} CPU used by then:          {_median(cpus)}")
                print(f"  {mode:8s} launch -> first sound:      {_median(sounds)}")
    finally:
        stop_null_sink()
        shutil.rmtree(runtime, ignore_errors=True)
        if pycache is not None:
            shutil.rmtree(pycache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
