"""The sink recorder's stall rule (tests/e2e/monitor.py): its watchdog sees the machine stand still, and a take is
taken again only when a failed check coincided with such a stall."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.monitor import STALL_S, TAKES, MonitorRecording, judged

pytestmark = pytest.mark.audio


def test_the_watchdog_measures_a_stall():
    with MonitorRecording(settle_s=0.3, tail_s=0.0) as rec:
        assert rec._watchdog is not None
        os.kill(rec._watchdog.pid, signal.SIGSTOP)  # what the hypervisor does to the whole machine
        time.sleep(0.15)
        os.kill(rec._watchdog.pid, signal.SIGCONT)
        time.sleep(0.05)
    assert rec.stall_s >= 0.12


class Take:
    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s


def failing() -> None:
    raise AssertionError("the burst was cut")


def test_a_failure_on_a_running_machine_fails():
    with pytest.raises(AssertionError, match="cut"):
        judged(Take(STALL_S / 4), failing, 0)  # type: ignore[arg-type]


def test_a_failure_during_a_stall_is_taken_again_and_a_pass_ends_it():
    assert judged(Take(STALL_S * 3), failing, 0) is False  # type: ignore[arg-type]
    assert judged(Take(STALL_S * 3), lambda: None, 1) is True  # type: ignore[arg-type]


def test_a_stall_in_every_take_skips_and_says_so():
    with pytest.raises(pytest.skip.Exception, match=f"each of {TAKES} takes.*the burst was cut"):
        judged(Take(STALL_S * 3), failing, TAKES - 1)  # type: ignore[arg-type]
