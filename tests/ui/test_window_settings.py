"""The window's providers, settings, key handling, presets, network simulator and long text, against the
real built-in server class (replay engine; one test uses the real offline voices) and real audio on the
null sink. Settings live in a per-test $VOICEGUI_CONFIG_DIR, the keyring in memory (see conftest.py).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.ui.conftest import CLIP_SECONDS, close_window, open_window, until
from tests.ui.test_main_window import speak_and_wait
from voicegui.openai_models import DEFAULT_REALTIME_MODEL

pytestmark = pytest.mark.audio


async def test_default_builtin_provider_speaks_with_no_configuration(qtbot, real_builtin):
    window = await open_window(real_builtin, text="Hello.")
    try:
        assert window.provider_panel.provider_id() == "builtin"
        assert window.provider_panel.model_id() == real_builtin.default_model
        assert window.provider_panel.voice_id() == real_builtin.default_voice
        assert not window.api_key.isEnabled()
        window.format.setCurrentText("pcm")
        playback = await speak_and_wait(qtbot, window, 20)
        m = playback.metrics
        assert m.completed and m.error is None, m
        assert m.audio_played_s > 0.3
        assert window.plots.waveform.peak > 0.05
    finally:
        await close_window(window)


async def test_voice_list_is_filled_from_the_server_and_filtered(window, server):
    ids = [window.voice.itemData(i) for i in range(window.voice.count())]
    assert ids == [v.id for v in server.voices()]
    assert window.provider_panel.voice_id() == server.default_voice
    models = [window.model.itemText(i) for i in range(window.model.count())]
    assert models == server.models()
    window.provider_panel.voice_filter.setText("shim")  # narrows the browser; it never picks (voice_picker.py)
    assert window.provider_panel.picker.visible_ids() == sorted({"shimmer", server.default_voice}, key=ids.index)
    assert window.voice.count() == len(ids) and window.provider_panel.voice_id() == server.default_voice
    window.provider_panel.picker.voice_chosen.emit("shimmer")  # as a click or Enter on it does
    window.provider_panel.voice_filter.clear()
    assert window.voice.count() == len(ids) and window.provider_panel.voice_id() == "shimmer"


async def test_network_simulator_slow_stream_shows_underruns(qtbot, window, server):
    window.network.throughput_x.setValue(0.5)  # audio arrives at half real time: it must stutter
    assert server.shaping.throughput_x == 0.5
    window.tuning.set_prebuffer(100)
    playback = await speak_and_wait(qtbot, window, 15)
    m = playback.metrics
    assert m.completed and m.underrun_episodes >= 1, m
    await asyncio.sleep(0.1)
    xs, _ys = window.plots.buffer.underruns.getData()
    assert len(xs) >= 1, "the buffer plot should mark the underruns"
    assert window.ttfa.underruns.text().startswith(str(m.underrun_episodes))
    window.network.throughput_x.setValue(0)  # "unlimited" again
    assert server.shaping.throughput_x is None


async def test_settings_survive_a_restart(qtbot, window, server, config_dir):
    pp = window.provider_panel
    window.format.setCurrentText("opus")
    pp.speed.setValue(1.25)
    window.tuning.apply_preset("Robust")
    window.tuning.volume.setValue(70)
    window.network.jitter_ms.setValue(20)
    pp.set_provider("custom")
    window.base_url.setText("http://127.0.0.1:9/v1")
    pp.model.setCurrentText("tts-1-hd")
    pp.voice.setCurrentText("nova")
    pp.set_provider("builtin")  # the custom provider's fields are remembered per provider
    await close_window(window)
    assert (config_dir / "settings.json").is_file()

    again = await open_window(server, fmt=None)
    try:
        app = again.provider_panel
        assert app.provider_id() == "builtin"
        assert again.format.currentText() == "opus" and app.speed.value() == pytest.approx(1.25)
        assert again.tuning.preset.currentText() == "Robust"
        assert again.tuning.values().prebuffer_ms == 1000 and again.tuning.values().volume == pytest.approx(0.7)
        assert again.network.jitter_ms.value() == 20 and server.shaping.jitter_s == pytest.approx(0.02)
        app.set_provider("custom")
        assert again.base_url.text() == "http://127.0.0.1:9/v1"
        assert app.model_id() == "tts-1-hd" and app.voice_id() == "nova"
        again.network.jitter_ms.setValue(0)
    finally:
        await close_window(again)


async def test_corrupt_settings_file_is_set_aside_with_a_message(server, config_dir):
    config_dir.mkdir(parents=True)
    (config_dir / "settings.json").write_text('{"provider": "builtin", "speed": ', encoding="utf-8")
    window = await open_window(server)
    try:
        assert window.banner.isVisible() and "damaged" in window.banner.text()
        aside = list(config_dir.glob("settings.json.corrupt-*"))
        assert len(aside) == 1 and aside[0].name in window.banner.text()
        assert window.provider_panel.provider_id() == "builtin"  # defaults
    finally:
        await close_window(window)
    assert (config_dir / "settings.json").is_file()  # a good file is written at close


async def test_typed_key_never_lands_in_a_file(qtbot, window, config_dir, memory_keyring, artifacts_dir, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "sk-fake-7f3a9c21-do-not-store"
    window.provider_panel.set_provider("openai")
    window.api_key.setFocus()
    QTest.keyClicks(window.api_key, secret)
    QTest.keyClick(window.api_key, Qt.Key.Key_Tab)  # editing finished: the key goes to the keyring
    await until(lambda: memory_keyring.store.get(("voicegui", "openai")) == secret, 3, "the key in the keyring")
    assert window.grab().save(str(artifacts_dir / "ui-key-typed.png"))
    await close_window(window)
    files = [p for root in (config_dir, artifacts_dir) for p in Path(root).rglob("*") if p.is_file()]
    assert any(p.name == "settings.json" for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"the key leaked into {path}"
    assert secret not in caplog.text


async def test_no_keyring_backend_is_said_in_the_ui(server):
    keyring.set_keyring(fail.Keyring())  # the memory_keyring fixture restores the previous backend
    window = await open_window(server)
    try:
        window.provider_panel.set_provider("kokoro")
        note = window.provider_panel.key_note
        assert note.isVisible() and "memory only" in note.text()
    finally:
        await close_window(window)


async def test_tuning_presets_change_the_next_session(qtbot, window):
    window.tuning.preset.setCurrentText("Robust")
    window.tuning.preset.activated.emit(window.tuning.preset.currentIndex())
    playback = await speak_and_wait(qtbot, window)
    opts = playback.session.options
    assert (opts.prebuffer_ms, opts.max_buffer_s, opts.output.latency, opts.output.blocksize) == (
        1000.0, 30.0, "high", 1024)
    assert opts.request.chunk_bytes == 4096
    assert playback.metrics.completed

    window.tuning.apply_preset("Low latency")
    assert window.tuning.preset.currentText() == "Low latency"
    playback = await speak_and_wait(qtbot, window)
    opts = playback.session.options
    assert (opts.prebuffer_ms, opts.output.latency, opts.request.chunk_bytes) == (50.0, "low", None)

    window.tuning.max_buffer_s.setValue(12.0)  # a knob moved by hand: no preset any more
    assert window.tuning.preset.currentText() == "Custom"
    window.tuning.reset_button.click()
    assert window.tuning.preset.currentText() == "Balanced" and window.tuning.values().prebuffer_ms is None


async def test_shutdown_warning_for_tts1_and_switch_to_realtime(window):
    pp = window.provider_panel
    pp.set_provider("openai")  # no key: the known lists, no request
    pp.model.setCurrentText("tts-1")
    pp.voice.setCurrentIndex(pp.voice.findData("fable"))
    assert pp.warning.isVisible()
    assert "tts-1" in pp.warning.text() and "2027-01-06" in pp.warning.text()
    assert DEFAULT_REALTIME_MODEL in pp.warning.text()
    assert pp.warning.switch_button.isVisible()
    assert not pp.instructions.isEnabled()  # tts-1 takes no instructions
    assert pp.speed.maximum() == 4.0
    assert not window.transcript_box.isVisible()

    pp.api_key.setText("sk-test-shared")
    pp.store_key()
    pp.warning.switch_button.click()
    assert pp.provider_id() == "openai_realtime"  # the "OpenAI Realtime" provider...
    assert pp.api_key.text() == "sk-test-shared"  # ...shares OpenAI's key
    assert all(pp.model.itemText(i).startswith("gpt-realtime") for i in range(pp.model.count()))
    assert pp.model_id() == DEFAULT_REALTIME_MODEL
    assert pp.voice_id() == "marin"  # fable has no Realtime voice
    assert pp.instructions.isEnabled()
    assert pp.speed.maximum() == 1.5
    assert not window.format.isEnabled() and pp.response_format() == "pcm"
    assert window.transcript_box.isVisible()
    assert not pp.warning.isVisible()

    pp.model.setCurrentText("gpt-4o-mini-tts")
    assert pp.warning.isVisible() and pp.instructions.isEnabled()


async def test_text_over_4096_chars_plays_as_one_gapless_session(qtbot, window, server):
    sentence = "This sentence is part of a long text that has to be sent in pieces. "
    text = sentence * (4200 // len(sentence) + 1)
    window.text_edit.setPlainText(text)
    assert window.speak_button.isEnabled()
    assert "pieces" in window.char_count.text()
    before = len(server.records)
    playback = await speak_and_wait(qtbot, window, 20)
    options = playback.session.options  # one session, one device stream...
    requests = (options.request, *options.continuation)
    assert len(requests) == 2 and len(server.records) - before == 2  # ...fed by two requests
    assert all(len(r.text) <= 4096 for r in requests)
    assert "".join(r.text for r in requests).replace(" ", "") == text.replace(" ", "")
    metrics = playback.session.metrics
    assert metrics.completed
    assert metrics.audio_played_s == pytest.approx(2 * CLIP_SECONDS, abs=0.1)
    assert metrics.underrun_episodes == 0


async def test_every_form_label_has_a_mnemonic_and_buddy(window):
    from PySide6.QtWidgets import QLabel

    labels = [lab for lab in window.findChildren(QLabel)
              if lab.buddy() is not None and lab.buddy().focusPolicy() != Qt.FocusPolicy.NoFocus]
    assert len(labels) >= 15
    for lab in labels:
        assert "&" in lab.text(), lab.text()
    # Tab walks from the text to Speak without getting stuck in the text box.
    window.text_edit.setFocus()
    await until(lambda: window.text_edit.hasFocus(), 2, "focus")
    QTest.keyClick(window.text_edit, Qt.Key.Key_Tab)
    assert window.speak_button.hasFocus()
