"""Settings: validation, atomic JSON round-trip under $VOICEGUI_CONFIG_DIR, corrupt files set aside, and the
API key kept out of the file (keyring in memory here: tests.ui.memory_keyring.MemoryKeyring)."""

from __future__ import annotations

import json

import keyring
import pytest
from keyring.backends import fail

from voicegui import settings as st
from voicegui.app_dirs import CONFIG_ENV


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_config_dir_follows_the_environment(config_dir):
    assert st.settings_path() == config_dir / "settings.json"


def test_round_trip(config_dir):
    s = st.Settings(provider="openai", models={"openai": "tts-1"}, voices={"openai": "nova"}, format="mp3",
                    speed=1.5, instructions="Calm.", chunk_bytes=2048, prebuffer_ms=250.0, max_buffer_s=20.0,
                    latency=0.05, blocksize=512, device="nullsink", volume=0.5, sim_first_byte_delay_ms=300.0,
                    sim_throughput_x=0.5, sim_jitter_ms=20.0, window_geometry="AdnQyw==")
    st.save(s)
    loaded = st.load()
    assert loaded.message is None
    assert loaded.settings == s
    assert sorted(p.name for p in config_dir.iterdir()) == ["settings.json"]  # no temp file left behind


def test_missing_file_gives_defaults(config_dir):
    loaded = st.load()
    assert loaded.settings == st.Settings() and loaded.message is None
    assert loaded.settings.provider == "builtin"
    assert loaded.settings.model_for("openai") == "gpt-4o-mini-tts"
    assert loaded.settings.base_url_for("kokoro") == "http://localhost:8880/v1"


def test_corrupt_file_is_moved_aside_with_a_message(config_dir):
    config_dir.mkdir()
    (config_dir / "settings.json").write_text("{not json", encoding="utf-8")
    loaded = st.load()
    assert loaded.settings == st.Settings()
    assert loaded.message and "damaged" in loaded.message
    aside = [p for p in config_dir.iterdir() if p.name.startswith("settings.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == "{not json"
    assert aside[0].name in loaded.message
    assert not (config_dir / "settings.json").exists()


def test_bad_values_fall_back_per_field(config_dir):
    config_dir.mkdir()
    (config_dir / "settings.json").write_text(json.dumps(
        {"speed": 9, "format": "ogg", "volume": 0.3, "future_key": 1, "provider": "kokoro"}), encoding="utf-8")
    loaded = st.load()
    assert loaded.settings.speed == 1.0 and loaded.settings.format == "pcm"
    assert loaded.settings.volume == 0.3 and loaded.settings.provider == "kokoro"
    assert "speed" in loaded.message and "format" in loaded.message


@pytest.mark.parametrize("field,value,words", [
    ("speed", 0.1, "0.25 and 4"), ("provider", "acme", "one of"), ("latency", "fast", "low, high"),
    ("chunk_bytes", 0, "1..1048576"), ("base_urls", {"custom": "ftp://x"}, "http://"),
    ("sim_throughput_x", 0, "unlimited"),
])
def test_validation_messages(field, value, words):
    s = st.Settings()
    setattr(s, field, value)
    with pytest.raises(ValueError, match=field) as info:
        s.validate()
    assert words in str(info.value)
    with pytest.raises(ValueError):
        st.save(s)


def test_key_goes_to_keyring_not_the_file(config_dir, memory_keyring):
    keys = st.KeyStore()
    assert keys.persistent and keys.warning is None
    keys.set("openai", "sk-test-secret-123")
    st.save(st.Settings(provider="openai"))
    assert memory_keyring.store[("voicegui", "openai")] == "sk-test-secret-123"
    assert "sk-test-secret-123" not in (config_dir / "settings.json").read_text()
    assert st.KeyStore().get("openai") == "sk-test-secret-123"  # a new run reads it back
    keys.set("openai", "")
    assert ("voicegui", "openai") not in memory_keyring.store


def test_env_key_fallback_for_openai_only(memory_keyring, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    keys = st.KeyStore()
    assert keys.get("openai") == "sk-env"
    assert keys.get("kokoro") == ""  # an OpenAI key is not sent to other servers


def test_no_keyring_backend_keeps_key_in_memory(monkeypatch):
    old = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        keys = st.KeyStore()
        assert not keys.persistent
        assert "memory only" in keys.warning
        keys.set("custom", "abc")
        assert keys.get("custom") == "abc"
    finally:
        keyring.set_keyring(old)


# --- hostile or damaged files: set aside or reset per field, never a traceback ------------------------------

@pytest.mark.parametrize("raw,words", [
    (b"\xff\xfe\x00garbage\x89PNG", "not UTF-8 text"),
    (b"[" * 100_000, "nests too deeply"),
    (b"[1, 2]", "no JSON object"),
    (b"{" + b" " * (st.MAX_SETTINGS_BYTES + 10) + b"}", "larger than"),
])
def test_undecodable_file_is_moved_aside_with_a_message(config_dir, raw, words):
    config_dir.mkdir()
    (config_dir / "settings.json").write_bytes(raw)
    loaded = st.load()
    assert loaded.settings == st.Settings()
    assert loaded.message and words in loaded.message and "\n" not in loaded.message
    aside = [p for p in config_dir.iterdir() if p.name.startswith("settings.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == raw  # nothing lost
    assert not (config_dir / "settings.json").exists()


def test_two_damaged_files_in_one_second_keep_both_copies(config_dir):
    config_dir.mkdir()
    for raw in (b"\xff one", b"\xff two"):
        (config_dir / "settings.json").write_bytes(raw)
        st.load()
    kept = sorted(p.read_bytes() for p in config_dir.iterdir() if ".corrupt-" in p.name)
    assert kept == [b"\xff one", b"\xff two"]


def test_a_utf8_bom_is_not_damage(config_dir):
    config_dir.mkdir()
    (config_dir / "settings.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"speed": 1.5}).encode())
    loaded = st.load()
    assert loaded.message is None and loaded.settings.speed == 1.5


@pytest.mark.parametrize("field,value", [
    ("provider", []), ("provider", {"a": 1}), ("format", ["pcm"]), ("speed", 10 ** 400),
    ("history_max_mb", 10 ** 400), ("window_geometry", "é not base64"), ("latency", {"x": 1}),
    ("base_urls", {"custom": 5}), ("instructions", "x" * 100_000),
])
def test_wrong_types_reset_one_field_with_a_short_message(config_dir, field, value):
    config_dir.mkdir()
    (config_dir / "settings.json").write_text(json.dumps({field: value, "volume": 0.25}), encoding="utf-8")
    loaded = st.load()
    assert getattr(loaded.settings, field) == getattr(st.Settings(), field)
    assert loaded.settings.volume == 0.25  # the good field survives
    assert loaded.message and field in loaded.message and len(loaded.message) < 400
    loaded.settings.validate()


def test_provider_options_and_profiles_round_trip(config_dir):
    from voicegui.server_profile import identify

    profile = identify({"data": [{"id": "kokoro", "owned_by": "kokoro", "sample_rate": 24000}]}, models_listed=True)
    s = st.Settings(provider="kokoro", provider_options={"kokoro": {
        "speed_min": 0.5, "speed_max": 2.0, "stream": False, "pcm_rate": 22050, "lang_code": "b",
        "extra_body": '{"seed": 42, "normalization_options": {"normalize": false}}'}},
        profiles={"kokoro": profile.to_json()})
    st.save(s)
    loaded = st.load()
    assert loaded.message is None and loaded.settings == s
    assert loaded.settings.profile_for("kokoro") == profile and loaded.settings.profile_for("custom") is None
    assert loaded.settings.options_for("kokoro")["lang_code"] == "b" and loaded.settings.options_for("custom") == {}


@pytest.mark.parametrize("options, words", [
    ({"custom": {"extra_body": "{seed: 1}"}}, "custom: The Extra JSON body is not valid JSON"),
    ({"custom": {"extra_body": '{"voice": "x"}'}}, "sets 'voice'"),
    ({"custom": {"speed_min": 3, "speed_max": 1}}, "low < high"),
    ({"custom": {"lang_code": "english"}}, "one lower-case letter"),
    ({"custom": {"colour": "red"}}, "unknown option 'colour'"),
    ({"custom": "fast"}, "must map provider ids to objects"),
])
def test_bad_provider_options_are_reset_with_a_message(config_dir, options, words):
    config_dir.mkdir(parents=True)
    (config_dir / "settings.json").write_text(json.dumps({"provider": "custom", "provider_options": options,
                                                          "speed": 1.5}))
    loaded = st.load()
    assert loaded.settings.provider_options == {} and loaded.settings.speed == 1.5  # the rest is kept
    assert loaded.message and "provider_options" in loaded.message and words in loaded.message
    with pytest.raises(ValueError, match="provider_options"):
        st.Settings(provider_options=options).validate()


def test_damaged_profile_is_reset_with_a_message(config_dir):
    config_dir.mkdir(parents=True)
    (config_dir / "settings.json").write_text(json.dumps({"profiles": {"kokoro": {"speed_range": [0, 99]}}}))
    loaded = st.load()
    assert loaded.settings.profiles == {} and "profiles kokoro: a speed range" in (loaded.message or "")
