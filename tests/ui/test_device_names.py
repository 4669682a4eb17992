"""The output device list in people's words: "System default" first, PulseAudio's "pulse"/"default" as one
entry, hardware devices by their PulseAudio sink's description, the raw PortAudio name in each tooltip; and
when pactl is missing, fails or hangs, the reason is logged once and the raw names are shown.

The list comes from the real PortAudio on the test PulseAudio null sink and the real pactl; the failing pactl
cases run real executables put first on PATH.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from voicegui.ui import device_names
from voicegui.ui.device_names import PULSE_DEFAULT, SYSTEM_DEFAULT, device_choices, pulse_sinks

pytestmark = pytest.mark.audio


def test_the_window_lists_people_names_with_the_raw_name_in_the_tooltip(qtbot):
    from voicegui.ui.panels import TuningPanel, output_device_names

    raw = output_device_names()
    assert "pulse" in raw and "default" in raw, raw  # PortAudio through ALSA's pulse plugin, as on desktops
    panel = TuningPanel()
    qtbot.addWidget(panel)
    combo = panel.device
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert labels[0] == SYSTEM_DEFAULT and combo.itemData(0) is None
    assert labels.count(PULSE_DEFAULT) == 1 and "pulse" not in labels and "default" not in labels, labels
    pulse = labels.index(PULSE_DEFAULT)
    assert combo.itemData(pulse) == "pulse"
    tooltip = combo.itemData(pulse, Qt.ItemDataRole.ToolTipRole)
    assert "pulse" in tooltip and "'default'" in tooltip
    # a device saved by its other name before is the same entry, not "default (not found)"
    panel.set_device("default")
    assert combo.currentIndex() == pulse and combo.count() == len(labels)


def test_pactl_gives_the_sinks_of_the_running_pulseaudio():
    sinks = pulse_sinks()
    assert any(s.get("name") == "nullsink" and s.get("description") for s in sinks), sinks


def test_hardware_devices_are_named_by_their_sink():
    # the shape `pactl -f json list sinks` prints for an ALSA card (trimmed to the fields used)
    sinks = [{"name": "alsa_output.pci-0000_00_1f.3.analog-stereo", "description": "Built-in Audio Analog Stereo",
              "properties": {"alsa.card": "0", "alsa.device": "0", "device.description": "Built-in Audio"}}]
    names = ["HDA Intel PCH: ALC892 Analog (hw:0,0)", "HDA Intel PCH: HDMI 0 (hw:0,3)", "pulse", "default"]
    choices = device_choices(names, sinks)
    assert [c.label for c in choices] == [SYSTEM_DEFAULT, "Built-in Audio Analog Stereo",
                                          "HDA Intel PCH: HDMI 0 (hw:0,3)", PULSE_DEFAULT]
    assert [c.device for c in choices] == [None, names[0], names[1], "pulse"]
    assert names[0] in choices[1].tooltip


def _fake_pactl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str | None) -> None:
    """Put a pactl running `script` (or none at all) first on PATH, and forget what was logged before."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if script is not None:
        pactl = bin_dir / "pactl"
        pactl.write_text("#!/bin/sh\n" + script)
        pactl.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    else:
        monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(device_names, "_reported", set())


@pytest.mark.parametrize(("script", "said"), [
    (None, "pactl not found"),
    ("echo 'Connection failure: Connection refused' >&2; exit 1", "pactl failed (Connection failure"),
    ("echo 'Unknown option -f'", "pactl printed no JSON"),
    ("exec sleep 30", "pactl did not answer within 1 s"),
])
def test_a_missing_or_failing_pactl_is_logged_once_and_the_raw_names_stay(tmp_path, monkeypatch, caplog, script,
                                                                          said):
    _fake_pactl(tmp_path, monkeypatch, script)
    caplog.set_level(logging.WARNING, logger="voicegui.ui.device_names")
    assert pulse_sinks() == [] and pulse_sinks() == []
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith(said), messages
    assert "PortAudio names" in messages[0]
    names = ["pulse", "default", "USB Audio: Headset (hw:1,0)"]
    assert [c.label for c in device_choices(names, [])] == [SYSTEM_DEFAULT, PULSE_DEFAULT, names[2]]
