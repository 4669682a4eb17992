"""Messages go when their cause is fixed: a new Test connection or Speak clears the old error banner and the
"Error: ..." status line, a successful one leaves none, and dismissing the banner drops the same error from
the status line. Real offscreen window, real built-in server, a closed loopback port as the broken server.
"""

from __future__ import annotations

import pytest

from tests.ui.conftest import until
from tests.ui.test_main_window import click, closed_port, speak_and_wait, use_custom

pytestmark = pytest.mark.audio


async def fail_once(qtbot, window) -> str:
    """A Speak against a closed port: the banner and the status line show its error."""
    use_custom(window, f"http://127.0.0.1:{closed_port()}/v1")
    playback = await speak_and_wait(qtbot, window)
    error = playback.metrics.error
    assert error and window.banner.isVisible() and window.status_line.text() == f"Error: {error}"
    return error


async def test_test_connection_clears_the_old_error(qtbot, window, server):
    await fail_once(qtbot, window)
    use_custom(window, server.base_url, server.token)  # the URL is fixed
    click(qtbot, window.provider_panel.test_button)
    assert not window.banner.isVisible(), "a new Test connection makes the old Speak error stale"
    assert not window.status_line.text().startswith("Error"), window.status_line.text()
    # Until the Test connection has finished, the lists it refreshes included (its button is enabled again):
    # a request still in flight when the test ends would be resumed after the loop stopped.
    await until(lambda: window.provider_panel.connection.text().startswith("Connected")
                and window.provider_panel.test_button.isEnabled(), 10, "the Test connection to succeed")
    assert not window.banner.isVisible() and not window.status_line.text().startswith("Error")


async def test_new_speak_clears_the_old_error_at_once_and_success_leaves_none(qtbot, window, server):
    await fail_once(qtbot, window)
    use_custom(window, server.base_url, server.token)
    before = len(window.playbacks)
    click(qtbot, window.speak_button)
    await until(lambda: not window.banner.isVisible(), 5, "the old banner to go")
    assert not window.status_line.text().startswith("Error")
    await until(lambda: len(window.playbacks) > before, 5, "the new Speak to start")
    playback = window.playbacks[-1]
    await playback.done.wait()
    await until(lambda: window.status_line.text().startswith("Done"), 5, "the Speak's outcome")
    assert playback.metrics.completed and not window.banner.isVisible()


async def test_dismissing_the_banner_drops_its_error_from_the_status_line(qtbot, window):
    await fail_once(qtbot, window)
    click(qtbot, window.banner.close_button)
    assert not window.banner.isVisible()
    assert window.status_line.text() == "Ready"


async def test_a_speak_that_cannot_start_still_says_why(qtbot, window):
    await fail_once(qtbot, window)
    window.tuning.latency.setCurrentText("soon")  # invalid: the new Speak fails before any request
    old = window.banner.text()
    click(qtbot, window.speak_button)
    await until(lambda: window.banner.isVisible() and window.banner.text() != old, 5, "the new error")
    assert "latency" in window.banner.text().lower() and window.status_line.text().startswith("Error: ")
