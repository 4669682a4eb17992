"""The desktop's GlobalShortcuts portal (ui/global_shortcut.py) against a stand-in portal on a private D-Bus
session bus (tests/ui/portal_stub.py: real dbus-daemon, real D-Bus messages; only the desktop behind the
portal is played by the test), with the real window speaking through the test's built-in server to the null
sink. Where no portal answers, the window works as before and Help says how to bind the keys by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import pytest

from tests.ui.conftest import until
from tests.ui.portal_stub import PortalStub, private_bus
from voicegui.ui import global_shortcut, instance
from voicegui.ui.menus import show_speak_anywhere

pytestmark = pytest.mark.audio

LONG_TEXT = "A sentence long enough to be still playing when the stop key comes, at real time."


@pytest.fixture
def bus() -> Iterator[str]:
    with private_bus() as address:
        yield address


def help_text(window) -> str:
    box = show_speak_anywhere(window)
    try:
        return box.text()
    finally:
        box.close()


async def test_portal_binds_both_keys_and_its_activations_reach_the_window(qtbot, window, server, bus):
    from PySide6.QtGui import QGuiApplication

    from voicegui.server.shaping import Shaping

    server.shaping = Shaping(throughput_x=1.0)  # real time: it still plays when the stop key comes
    # The user picked another key for "speak-selection" in the desktop's dialog; "stop" keeps ours.
    with PortalStub(bus, triggers={"speak-selection": "Super+R"}) as portal:
        commands = instance.WindowCommands(window)
        shortcuts = global_shortcut.install(window, commands, None, bus)
        try:
            await until(lambda: bool(shortcuts.bound), 10, "the portal's binding")
            assert [c.member for c in portal.calls] == ["Get", "CreateSession", "BindShortcuts"]
            assert portal.bound() == [
                ("speak-selection", {"description": "Speak the selected text", "preferred_trigger": "CTRL+ALT+S"}),
                ("stop", {"description": "Stop speaking", "preferred_trigger": "CTRL+ALT+X"})]
            assert shortcuts.session == portal.session is not None
            assert shortcuts.bound == {"speak-selection": "Super+R", "stop": "CTRL+ALT+X"}  # the desktop's words
            text = help_text(window)
            assert "shortcut portal: Super+R speaks the selection, CTRL+ALT+X stops" in text
            assert "xbindkeys" not in text  # no how-to for keys that are bound already

            assert commands.speak(LONG_TEXT, "the text").ok
            await until(lambda: window.player.is_busy() and len(window.playbacks) == 1, 10, "the Speak")
            portal.fire("stop")  # the user presses the stop key in another program
            await asyncio.wait_for(window.playbacks[0].done.wait(), 10)
            assert window.playbacks[0].superseded

            portal.fire("speak-selection")
            if QGuiApplication.clipboard().supportsSelection():
                await until(lambda: shortcuts.activations == 2, 10, "the selection key")
            else:  # offscreen, like Wayland without a primary selection: said in the banner, not swallowed
                await until(lambda: "no primary selection" in window.banner.text(), 10, "the refusal")
                assert len(window.playbacks) == 1
        finally:
            await shortcuts.close()
    assert portal.session is None  # the session was closed: the desktop releases the keys


@pytest.mark.parametrize("case, why", [
    ("no bus", "no D-Bus session bus"),
    ("no portal", "offers no org.freedesktop.portal.GlobalShortcuts portal"),
    ("old portal", "offers no org.freedesktop.portal.GlobalShortcuts portal"),
    ("user cancelled", "BindShortcuts: the request was cancelled"),
])
async def test_without_portal_keys_the_window_works_and_help_says_how_to_bind(
        qtbot, window, bus, monkeypatch, caplog, case, why):
    caplog.set_level(logging.INFO, logger=global_shortcut.__name__)
    address: str | None = bus
    if case == "no bus":
        monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
        address = None
    with contextlib.ExitStack() as stack:
        if case in ("old portal", "user cancelled"):
            stack.enter_context(PortalStub(bus, version=0 if case == "old portal" else 1, bind_response=1))
        shortcuts = global_shortcut.install(window, instance.WindowCommands(window), None, address)
        await asyncio.wait_for(shortcuts.settled.wait(), 15)
        await shortcuts.close()
    assert shortcuts.bound == {} and shortcuts.problem is not None and why in shortcuts.problem
    lines = [r.getMessage() for r in caplog.records if r.name == global_shortcut.__name__]
    assert len(lines) == 1 and why in lines[0] and "Help > Speak from anywhere" in lines[0], lines
    text = help_text(window)
    for desktop in ("GNOME", "KDE Plasma", "xbindkeys"):
        assert desktop in text
    assert "shortcut portal" not in text
    assert not window.banner.text()  # nothing to act on: no error shown
    assert window.isVisible() and window.speak_button.isEnabled()
