"""Human names for the output device list: PortAudio's names ("pulse", "default", "hw:0,0" devices) are what
the audio stack calls them, not what a user recognises.

* "System default" (no device: PortAudio's default output) comes first.
* With PulseAudio, PortAudio lists "pulse" and "default", which both play to PulseAudio's default sink: they
  become one entry, "System default (PulseAudio)", playing through "pulse".
* An ALSA hardware device ("HDA Intel PCH: ALC892 Analog (hw:0,0)") is named by the PulseAudio sink on the
  same card and device when there is one ("Built-in Audio Analog Stereo").
* Every entry's tooltip gives the raw PortAudio name (what the settings file and ``--device`` take).

The sink descriptions come from ``pactl -f json list sinks`` (pulseaudio-utils, also shipped for PipeWire's
pulse server), run once at start-up with a time bound; when pactl is missing or fails, the reason is logged
once and the names PortAudio gives are shown as they are.

Threads: GUI thread (the Playback tab asks once while the window is built).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

PACTL_TIMEOUT_S = 1.0  # a hung PulseAudio must not hold the window's start-up longer than this
SYSTEM_DEFAULT = "System default"
PULSE_DEFAULT = "System default (PulseAudio)"
PULSE_ALIASES = ("pulse", "default")  # PortAudio's two names for PulseAudio's default sink
_HW = re.compile(r"\(hw:(\d+),(\d+)\)\s*$")

_reported: set[str] = set()  # pactl problems already logged (once each per process)


@dataclass(frozen=True)
class DeviceChoice:
    """One entry of the device list: what it shows, the device name handed to PortAudio (None: the default
    output), and its tooltip."""

    label: str
    device: str | None
    tooltip: str


def _report_once(message: str) -> None:
    if message not in _reported:
        _reported.add(message)
        log.warning("%s", message)


def pulse_sinks() -> list[dict[str, Any]]:
    """PulseAudio's sinks as ``pactl -f json list sinks`` gives them; [] (reason logged once) when pactl is not
    installed, fails, hangs past PACTL_TIMEOUT_S or prints something else than a JSON list."""
    pactl = shutil.which("pactl")
    if pactl is None:
        _report_once("pactl not found: the output devices are listed by their PortAudio names (install "
                     "pulseaudio-utils for their PulseAudio descriptions)")
        return []
    try:
        done = subprocess.run([pactl, "-f", "json", "list", "sinks"], capture_output=True, text=True,
                              timeout=PACTL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        _report_once(f"pactl did not answer within {PACTL_TIMEOUT_S:g} s: the output devices are listed by "
                     "their PortAudio names")
        return []
    except OSError as exc:
        _report_once(f"pactl could not run ({exc}): the output devices are listed by their PortAudio names")
        return []
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
        _report_once(f"pactl failed ({reason}): the output devices are listed by their PortAudio names")
        return []
    try:
        sinks = json.loads(done.stdout)
    except ValueError:
        _report_once("pactl printed no JSON (pactl 16 or newer is needed for -f json): the output devices are "
                     "listed by their PortAudio names")
        return []
    return [s for s in sinks if isinstance(s, dict)] if isinstance(sinks, list) else []


def _sink_by_card(sinks: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(ALSA card, ALSA device) -> the sink's description, for the sinks that play on an ALSA device."""
    out = {}
    for sink in sinks:
        props = sink.get("properties") or {}
        card, device = props.get("alsa.card"), props.get("alsa.device")
        description = sink.get("description") or props.get("device.description")
        if card is not None and device is not None and description:
            out[(str(card), str(device))] = str(description)
    return out


def device_choices(names: list[str], sinks: list[dict[str, Any]]) -> list[DeviceChoice]:
    """The device list as shown: "System default" first, PulseAudio's two aliases as one entry, hardware
    devices by their sink's description where known, every other name as PortAudio gives it."""
    choices = [DeviceChoice(SYSTEM_DEFAULT, None, "PortAudio's default output")]
    by_card = _sink_by_card(sinks)
    pulse = "pulse" in names
    for name in names:
        if pulse and name in PULSE_ALIASES:
            if name == "pulse":
                choices.append(DeviceChoice(PULSE_DEFAULT, "pulse", _pulse_tooltip(names)))
            continue
        hw = _HW.search(name)
        described = by_card.get((hw.group(1), hw.group(2))) if hw else None
        if described:
            choices.append(DeviceChoice(described, name, f"PortAudio device: {name}"))
        else:
            choices.append(DeviceChoice(name, name, f"PortAudio device: {name}"))
    return choices


def _pulse_tooltip(names: list[str]) -> str:
    also = " (also listed as 'default')" if "default" in names else ""
    return f"PortAudio device: pulse{also}: plays to PulseAudio's default sink"


def alias_of(name: str | None, choices: list[DeviceChoice]) -> str | None:
    """The device an entry of the list plays for a saved name: "default" is the PulseAudio entry's "pulse"
    when the two were merged; any other name is itself."""
    if name == "default" and any(c.device == "pulse" and c.label == PULSE_DEFAULT for c in choices):
        return "pulse"
    return name
