"""Run a command the way a shared virtual machine runs it: now and then every one of its processes stands still.

    python -m tests.stall_injector [--min-gap-s 0.3] [--max-gap-s 2] [--min-stall-ms 20] [--max-stall-ms 150]
                                   [--seed N] -- COMMAND ARGS...

CI runs on a VM whose hypervisor now and then holds the whole machine (its "steal" time, the 8th number of the
`cpu` line in /proc/stat) for tens of milliseconds: PulseAudio, PortAudio's callback thread, the test and its
servers all stop while the clock runs on. CPU hogs inside a VM do not reproduce that (the scheduler still wakes
the audio threads at once). This command does: it starts COMMAND in a cgroup-v1 freezer group of its own
(/sys/fs/cgroup/freezer/<unique name>), joined by the child before it execs, so every descendant (the null sink's
pulseaudio that tests/conftest.py starts included) is in it; then, until COMMAND exits, it freezes the group for
a random stall, thaws it, waits a random gap, and again. At the end it removes the group, says on stderr how many
stalls there were, their total and the longest, and exits with COMMAND's exit code.

Needs root and the cgroup-v1 freezer controller (`freezer_group_error()` says why not, in one sentence).

Threads: one. The child is started with a `preexec_fn`, which is only safe in a process without other threads;
this one has none. The group is thawed in a `finally`, so an interrupted run (Ctrl+C, an error here) never
leaves COMMAND frozen.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

FREEZER_ROOT = Path("/sys/fs/cgroup/freezer")
FREEZE_TIMEOUT_S = 1.0  # a task the kernel cannot freeze holds FREEZING; past this, thaw and say which task


class FreezerError(RuntimeError):
    """The freezer group could not be made, frozen or thawed; the message says why and what to do."""


def freezer_group_error() -> str | None:
    """None when a freezer group can be made here, else one sentence saying why not."""
    if not (FREEZER_ROOT / "cgroup.procs").exists():
        return (f"no cgroup-v1 freezer hierarchy at {FREEZER_ROOT}: the stall injector needs the freezer "
                "controller mounted there (cgroup v1)")
    if not os.access(FREEZER_ROOT, os.W_OK):
        return f"{FREEZER_ROOT} is not writable: run the stall injector as root"
    return None


class FreezerGroup:
    """One freezer cgroup of a unique name, made on construction and removed by `remove()`."""

    def __init__(self) -> None:
        reason = freezer_group_error()
        if reason is not None:
            raise FreezerError(reason)
        self.path = FREEZER_ROOT / f"voicegui-stall-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.last_unfrozen: list[str] = []
        try:
            self.path.mkdir()
        except OSError as exc:
            raise FreezerError(f"cannot make the freezer group {self.path}: {exc.strerror}") from None

    def join(self) -> None:
        """Move the calling process into the group (the child calls this before it execs)."""
        (self.path / "cgroup.procs").write_text(f"{os.getpid()}\n")

    def state(self) -> str:
        return (self.path / "freezer.state").read_text().strip()

    def freeze(self) -> bool:
        """Freeze every task of the group: True once the kernel says FROZEN (not just FREEZING); False, with the
        group thawed again, when some task did not freeze within FREEZE_TIMEOUT_S (`unfrozen()` names them)."""
        (self.path / "freezer.state").write_text("FROZEN\n")
        deadline = time.monotonic() + FREEZE_TIMEOUT_S
        while self.state() != "FROZEN":
            if time.monotonic() > deadline:
                self.last_unfrozen = self.unfrozen()
                self.thaw()
                return False
            time.sleep(0.0005)
        return True

    def unfrozen(self) -> list[str]:
        """The group's threads that may not be frozen, as 'tid comm state: kernel stack'. A frozen task shows as
        D (uninterruptible) and its stack is where it slept, so only the ones in another state are certainly
        running; when there is none, the D ones are listed (one of them waits where the freezer cannot reach)."""
        tasks = []
        for tid in (self.path / "tasks").read_text().split():
            try:
                stat = Path(f"/proc/{tid}/stat").read_text()
                stack = Path(f"/proc/{tid}/stack").read_text().split("\n")
            except OSError:  # it exited meanwhile
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            state = stat[stat.rindex(")") + 2]
            top = " <- ".join(line.split(" ", 1)[-1].split("+")[0] for line in stack[:5] if line)
            tasks.append((state, f"{tid} {comm} {state}: {top}"))
        running = [text for state, text in tasks if state != "D"]
        return running or [text for _, text in tasks]

    def thaw(self) -> None:
        (self.path / "freezer.state").write_text("THAWED\n")

    def pids(self) -> list[int]:
        return [int(line) for line in (self.path / "cgroup.procs").read_text().split()]

    def remove(self) -> int:
        """Thaw, move any process still in the group (a daemon COMMAND left behind) back to the root group,
        and remove the group. Returns how many processes were moved out."""
        self.thaw()
        left = self.pids()
        for pid in left:
            try:
                (FREEZER_ROOT / "cgroup.procs").write_text(f"{pid}\n")
            except ProcessLookupError:  # it exited between the read and the move
                pass
        self.path.rmdir()
        return len(left)


@dataclass
class StallPlan:
    """Random stalls and gaps between them, within the given bounds (seconds)."""

    min_gap_s: float
    max_gap_s: float
    min_stall_s: float
    max_stall_s: float
    rng: random.Random = field(default_factory=random.Random)

    def gap(self) -> float:
        return self.rng.uniform(self.min_gap_s, self.max_gap_s)

    def stall(self) -> float:
        return self.rng.uniform(self.min_stall_s, self.max_stall_s)


@dataclass
class StallLog:
    stalls_s: list[float] = field(default_factory=list)
    missed: list[list[str]] = field(default_factory=list)  # per freeze that did not complete: the unfrozen tasks

    def summary(self) -> str:
        text = self._stalls()
        if self.missed:
            text += (f"; {len(self.missed)} freeze(s) did not complete within {FREEZE_TIMEOUT_S:g} s (see above)")
        return text

    def _stalls(self) -> str:
        if not self.stalls_s:
            return "stall injector: no stall (the run ended before the first gap was over)"
        return (f"stall injector: {len(self.stalls_s)} stalls, {sum(self.stalls_s):.2f} s in all, "
                f"the longest {max(self.stalls_s) * 1000:.0f} ms")


class Terminated(Exception):
    """This process got SIGTERM: raised so that the group is thawed and the command stopped, not left frozen."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def _wait_or_exit(proc: subprocess.Popen, seconds: float) -> bool:
    """Sleep `seconds` unless `proc` exits first; True when it has exited."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def run_with_stalls(command: list[str], plan: StallPlan, log: StallLog) -> int:
    """Run `command` in a fresh freezer group, stalling it by `plan` until it exits; its exit code."""
    group = FreezerGroup()
    print(f"stall injector: freezer group {group.path}", file=sys.stderr)
    try:
        proc = subprocess.Popen(command, preexec_fn=group.join)
        try:
            while not _wait_or_exit(proc, plan.gap()):
                stall = plan.stall()
                if not group.freeze():
                    log.missed.append(group.last_unfrozen)
                    print(f"stall injector: a freeze did not complete within {FREEZE_TIMEOUT_S:g} s (thawed, going "
                          "on); tasks not frozen:\n  " + "\n  ".join(group.last_unfrozen), file=sys.stderr)
                    continue
                frozen_at = time.monotonic()
                time.sleep(stall)
                group.thaw()
                log.stalls_s.append(time.monotonic() - frozen_at)
        except BaseException as exc:
            group.thaw()
            if proc.poll() is None:
                # Let it clean up as it would after the same signal sent to it directly (pytest tears down).
                proc.send_signal(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            raise
        # Killed by a signal: the shell's convention (128 + N), since a negative code is not an exit status.
        return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    finally:
        moved = group.remove()
        if moved:
            print(f"stall injector: {moved} process(es) of the command outlived it and were moved out of "
                  "the freezer group", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.stall_injector", description=__doc__.split("\n\n")[0])
    p.add_argument("--min-gap-s", type=float, default=0.3, help="shortest run between two stalls (s)")
    p.add_argument("--max-gap-s", type=float, default=2.0, help="longest run between two stalls (s)")
    p.add_argument("--min-stall-ms", type=float, default=20.0, help="shortest stall (ms)")
    p.add_argument("--max-stall-ms", type=float, default=150.0, help="longest stall (ms)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random stalls and gaps (default: random)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given: put it after `--`, e.g. `-- python -m pytest -m played_clock`")
    if not 0 <= args.min_gap_s <= args.max_gap_s or not 0 <= args.min_stall_ms <= args.max_stall_ms:
        parser.error("each minimum must be >= 0 and no larger than its maximum (--min-gap-s/--max-gap-s, "
                     "--min-stall-ms/--max-stall-ms)")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    plan = StallPlan(args.min_gap_s, args.max_gap_s, args.min_stall_ms / 1000, args.max_stall_ms / 1000,
                     random.Random(seed))
    log = StallLog()
    signal.signal(signal.SIGTERM, _raise_terminated)
    print(f"stall injector: seed {seed}; stalls of {args.min_stall_ms:g}-{args.max_stall_ms:g} ms every "
          f"{args.min_gap_s:g}-{args.max_gap_s:g} s", file=sys.stderr)
    try:
        code = run_with_stalls(command, plan, log)
    except FreezerError as exc:
        print(f"stall injector: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"stall injector: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    except KeyboardInterrupt:
        print(log.summary(), file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated:
        print(log.summary(), file=sys.stderr)
        return 128 + signal.SIGTERM
    print(log.summary(), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
