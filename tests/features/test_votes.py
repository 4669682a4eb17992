"""A/B votes: kept across runs in a bounded file, damage set aside, tallied per voice."""

from __future__ import annotations

import json

import pytest

from voicegui.features.votes import (
    MAX_VOTES,
    Vote,
    add_vote,
    load_votes,
    save_votes,
    tally,
    votes_about,
    votes_path,
)


def test_votes_are_kept_and_tallied(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEGUI_CONFIG_DIR", str(tmp_path))
    add_vote(Vote("alloy / pcm", "echo / mp3", "1", text="Hi."))
    add_vote(Vote("echo / mp3", "alloy / pcm", "2"))
    add_vote(Vote("echo / mp3", "alloy / pcm", "same", blind=False))
    votes = load_votes()
    assert votes_path() == tmp_path / "ab-votes.json"
    assert [v.choice for v in votes] == ["1", "2", "same"] and votes[0].text == "Hi." and not votes[2].blind
    t = tally(votes)
    assert (t["alloy / pcm"].wins, t["alloy / pcm"].losses, t["alloy / pcm"].same) == (2, 0, 1)
    assert (t["echo / mp3"].wins, t["echo / mp3"].losses, t["echo / mp3"].same) == (0, 2, 1)
    assert votes[0].sentence() == "alloy / pcm preferred over echo / mp3"
    assert votes_about(votes, ["alloy / pcm"]) == [] and len(votes_about(votes, ["alloy / pcm", "echo / mp3"])) == 3


def test_bounded_and_damage_tolerant(tmp_path, caplog):
    path = tmp_path / "v.json"
    # A full file written at once, then votes past the bound: 503 add_vote calls (each a read and a synced
    # write of the whole file) took ~10 s and tested nothing more.
    save_votes([Vote(f"a{i}", "b", "1") for i in range(MAX_VOTES)], path)
    for i in range(MAX_VOTES, MAX_VOTES + 3):
        add_vote(Vote(f"a{i}", "b", "1"), path)
    votes = load_votes(path)
    assert len(votes) == MAX_VOTES and votes[0].first == "a3" and votes[-1].first == f"a{MAX_VOTES + 2}"
    data = json.loads(path.read_text())
    data["votes"][0] = {"first": "x"}  # one broken entry loses only itself
    data["votes"][1]["choice"] = "maybe"
    path.write_text(json.dumps(data))
    assert len(load_votes(path)) == MAX_VOTES - 2
    path.write_text("not json")
    assert load_votes(path) == [] and (tmp_path / "v.json.damaged").exists() and "moved to" in caplog.text
    add_vote(Vote("a", "b", "2"), path)
    assert [v.winner for v in load_votes(path)] == ["b"]


def test_a_vote_is_one_of_three_choices():
    with pytest.raises(ValueError, match="1, 2, same"):
        Vote("a", "b", "A")
