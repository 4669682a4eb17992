"""Fuzzing the two loaders that read files from disk: settings.load / settings.from_json and the history index
(HistoryStore on an index of arbitrary bytes or lines, HistoryEntry.from_json on arbitrary JSON values).

What each example must satisfy: no exception but the documented ones (from_json: ValueError for a non-object;
HistoryEntry.from_json: ValueError), and the result is always valid and typed (Settings.validate() passes,
every HistoryEntry field has its declared type and a valid id). A few seconds per run."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from voicegui import settings as settings_mod
from voicegui.features.history import HistoryEntry, HistoryStore, valid_id

from .features.test_history_damage import GOOD, assert_typed

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**310)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
settings_keys = st.sampled_from([f for f in settings_mod.Settings.__dataclass_fields__] + ["unknown"])
entry_keys = st.sampled_from(list(HistoryEntry.__dataclass_fields__) + ["unknown"])


def check_settings(s: settings_mod.Settings) -> None:
    s.validate()
    assert isinstance(s, settings_mod.Settings)


@FAST
@given(st.binary(max_size=300))
def test_settings_load_of_arbitrary_bytes(tmp_path_factory, raw):
    path = Path(tmp_path_factory.mktemp("cfg")) / "settings.json"
    path.write_bytes(raw)
    loaded = settings_mod.load(path)
    check_settings(loaded.settings)
    assert loaded.message is None or (isinstance(loaded.message, str) and "\n" not in loaded.message)


@FAST
@given(st.dictionaries(settings_keys, json_values, max_size=8) | json_values)
def test_settings_from_json_of_arbitrary_values(data):
    try:
        s, problems = settings_mod.from_json(data)
    except ValueError:
        assert not isinstance(data, dict)
        return
    check_settings(s)
    assert all(isinstance(p, str) and len(p) <= 200 for p in problems)
    # And the same through a file (json can write NaN/Infinity, which load reads back).
    check_settings(settings_mod.from_json(json.loads(json.dumps(data)))[0])


@FAST
@given(st.dictionaries(entry_keys, json_values, max_size=8).map(lambda d: {**GOOD, **d}) | json_values)
def test_history_entry_from_json_of_arbitrary_values(data):
    try:
        e = HistoryEntry.from_json(data)
    except ValueError:
        return
    assert_typed(e)
    assert valid_id(e.id) and math.isfinite(e.time)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=80) | st.builds(lambda d: json.dumps({**GOOD, **d}).encode(),
                                                   st.dictionaries(entry_keys, json_values, max_size=3)),
                max_size=6))
def test_history_store_on_an_index_of_arbitrary_lines(tmp_path_factory, lines):
    root = Path(tmp_path_factory.mktemp("history"))
    raw = b"\n".join(lines)
    (root / "index.jsonl").write_bytes(raw)
    store = HistoryStore(root)
    entries = store.entries()
    for e in entries:
        assert_typed(e)
        assert valid_id(e.id)
    assert len({e.id for e in entries}) == len(entries)
    assert store.notice is None or "\n" not in store.notice
    # The store works afterwards, and the next start sees a clean index.
    store.add(HistoryEntry(time=1.0, provider="p", base_url="", model="m", voice="v", format="pcm"), b"x")
    again = HistoryStore(root)
    assert again.notice is None and len(again.entries()) == len(entries) + 1
