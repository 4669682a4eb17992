"""SpeakProgress: the progress line under the text while a Speak plays ('Piece 2 of 3 · 0:41 / ~2:05') and the
sentence and word being heard highlighted in the text box (read-along).

Where the word times come from, best first: a Speak to a server that answers /dev/captioned_speech (the
built-in server; Kokoro-FastAPI, whose word timestamps are the server's: `ask_timings_of` decides, the window
says which servers) asks it for each piece's timings once the stream has been received (features/captioned.py:
the engine's own word starts or sentence bounds; timings whose audio is not as long as the piece played are
dropped, so a server whose second synthesis differs falls back to estimates), and hands them to the history
once it has recorded the Speak (`keep_timings_with`); a history
replay gets the entry's timings from the window (`use_timings`: kept, or estimated from the cached audio);
a Speak over the Realtime API is timed from its transcript as it arrives (features/transcript_timings.py, from
the session's transcript timelines, rebuilt when they change) and kept the same way; otherwise speech_map
shares each piece's time among sentences by characters and words by syllables. The tooltip says which is shown.

Threads: GUI thread only. It polls the Playback it follows (`follow(source)`) on a QTimer (20 Hz: a word lasts
a few hundred ms) through the session's ``snapshot()``, safe from any thread; the mapping from the played-audio
clock to pieces, sentences and words is ui/speech_map.py's. Elapsed and the highlight follow what the device
played, so they hold still while it prebuffers or underruns and stop at Stop; at Stop or the end both are
cleared. The timings fetch is an asyncio task on the same (GUI) loop, cancelled when the Playback ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QWidget

from voicegui.features.captioned import CaptionedError, fetch_timings
from voicegui.features.history import HistoryError
from voicegui.features.timings import FROM_TRANSCRIPT, Timings, match_slack_s
from voicegui.features.transcript_timings import TranscriptTimer
from voicegui.providers import BUILTIN
from voicegui.stream.player import Playback
from voicegui.stream.prebuffer import PrebufferPolicy
from voicegui.stream.realtime import uses_realtime
from voicegui.stream.session import Snapshot
from voicegui.ui.speech_map import PieceMap, map_pieces, progress, progress_line

log = logging.getLogger(__name__)

REFRESH_MS = 50
KEEP_WAIT_S = 30.0  # the history hook writes a body in a worker thread; a full disk reports itself meanwhile
ESPEAK_PREFIX = "espeak:"  # the built-in espeak-ng voices' ids (server/engines/espeak.VOICE_PREFIX)
ENDED_STATES = ("done", "stopped", "error")
TOOLTIP = ("Elapsed is the audio played so far. The total is marked ~ while it is estimated: from the characters "
           "per second measured on the pieces received so far, until every piece has arrived.\n"
           "The highlighted sentence is estimated: servers do not say when each sentence is spoken, so each "
           "piece's audio (whose length is exact) is shared among its sentences by their number of characters, "
           "and each sentence's time among its words by their syllables.")
TIMED_TOOLTIP = ("Elapsed is the audio played so far.\nThe highlighted sentence and word follow timings of this "
                 "very audio: {how}.")


class SpeakProgress(QLabel):
    """`text()` -> the text box's text; `highlight(span)` marks a span of it (None: no mark)."""

    def __init__(self, text: Callable[[], str], highlight: Callable[[tuple[int, int] | None], None],
                 parent: QWidget | None = None,
                 highlight_word: Callable[[tuple[int, int] | None], None] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("speakProgress")
        self.setToolTip(TOOLTIP)
        self._text = text
        self._highlight = highlight
        self._source: Callable[[], Playback | None] | None = None
        self._playback: Playback | None = None
        self._map: list[PieceMap] | None = None
        self._chars: list[int] = []
        self._fallback_s: list[float] = []
        self._highlight_word = highlight_word
        self._timings: list[Timings | None] = []
        self._timers: list[TranscriptTimer] = []  # a Realtime Speak: one per piece
        self._timeline_versions: list[int] | None = None  # a Realtime Speak: each piece's timeline version used
        self._given: tuple[str, Timings] | None = None  # use_timings(): for the next Playback of that text
        self._fetch: asyncio.Task[None] | None = None
        self._want_fetch = False
        self._asks: Callable[[Playback], bool] = lambda playback: playback.provider == BUILTIN
        self._keep: Callable[[str, Timings], None] | None = None
        self._keeping: set[asyncio.Task[None]] = set()
        self.sentence: tuple[int, int] | None = None  # the span highlighted now
        self.word: tuple[int, int] | None = None  # the word highlighted now (inside the sentence)
        self.timed = False  # the highlight follows Timings (see the module docstring), not shares of characters
        self.hide()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    def follow(self, source: Callable[[], Playback | None]) -> None:
        """Show the progress of `source()` (None: nothing plays that this line reports) from now on."""
        self._source = source
        self.timer.start()

    def keep_timings_with(self, keep: Callable[[str, Timings], None]) -> None:
        """Hand the timings a finished Speak was shown with to `keep(history_id, timings)` once the history has
        recorded it (HistoryStore.save_timings; run in a worker thread), so a replay and its captions use them."""
        self._keep = keep

    def ask_timings_of(self, asks: Callable[[Playback], bool]) -> None:
        """`asks(playback)`: whether the server that plays it answers /dev/captioned_speech (default: the
        built-in server only)."""
        self._asks = asks

    def use_timings(self, text: str, timings: Timings | None) -> None:
        """The next Playback of `text` (a history replay) is timed by `timings` (None: estimate as usual)."""
        self._given = None if timings is None else (text, timings)

    def text_changed(self) -> None:
        """The text box was edited: the spans of the running Speak are no longer where they were."""
        self._playback = None

    def refresh(self) -> None:
        playback = None if self._source is None else self._source()
        if playback is None or playback.done.is_set():
            self._clear()
            return
        snap = playback.session.snapshot(arrays=False)
        if snap.state in ENDED_STATES:
            self._clear()
            return
        if playback is not self._playback:
            self._start(playback)
        # A neural voice's second synthesis waits for the stream's end, not to slow it; espeak-ng's costs ~50 ms
        # a request and ~20 ms a piece (its word events helper), so its timings are asked for at once (they are
        # there before an underrun could matter).
        if self._want_fetch and (snap.fetch_done or playback.request.voice.startswith(ESPEAK_PREFIX)):
            self._want_fetch = False
            self._fetch = asyncio.ensure_future(self._fetch_timings(playback))
        self._time_from_transcripts(playback)
        self._drop_contradicted(snap)
        p = progress(snap, self._map, self._chars, self._fallback_s, self._timings)
        self.setText(progress_line(p))
        self.show()
        if p.timed != self.timed:
            self.timed = p.timed
            if playback.kind == "replay":
                how = "kept with the history entry, or estimated from its audio"
            elif self._timeline_versions is not None:
                how = (f"{FROM_TRANSCRIPT}: each sentence's bounds are exact; a word starts where the model's text "
                       "for it arrived, which can run ahead of the voice; words read differently, or whose text "
                       "came all at once, are estimated")
            elif playback.provider != BUILTIN:
                how = "the server's own word timestamps"
            elif playback.request.voice.startswith(ESPEAK_PREFIX):
                how = "espeak-ng's own word starts"
            else:
                how = "the built-in voice's own sentence bounds, words aligned to their pauses"
            self.setToolTip(TIMED_TOOLTIP.format(how=how) if p.timed else TOOLTIP)
        self._set_sentence(p.sentence)
        self._set_word(p.word)

    def _start(self, playback: Playback) -> None:
        req = playback.request
        texts = [r.text for r in (req, *playback.options.continuation)]
        self._playback = playback
        self._map = map_pieces(self._text(), texts)
        self._chars = [len("".join(t.split())) for t in texts]
        self._fallback_s = [PrebufferPolicy.expected_duration(t, req.speed) for t in texts]
        self._cancel_fetch()
        self._timings = [None] * len(texts)
        realtime = playback.kind == "speak" and playback.options.source is None and uses_realtime(req)
        self._timers = [TranscriptTimer(t) for t in texts] if realtime else []
        self._timeline_versions = [-1] * len(texts) if realtime else None
        given, self._given = self._given, None
        if given is not None and len(texts) == 1 and given[0] == texts[0]:
            self._timings[0] = given[1]
        # Only a Speak a server with the route streams (a replay has its timings given).
        self._want_fetch = playback.kind == "speak" and playback.options.source is None and self._asks(playback)

    async def _fetch_timings(self, playback: Playback) -> None:
        req = playback.request
        for i, r in enumerate((req, *playback.options.continuation)):
            try:
                timings = await fetch_timings(r.base_url, r.api_key, r.model, r.voice, r.text,
                                              1.0 if r.speed is None else r.speed)
            except CaptionedError as exc:  # the highlight stays estimated, and its tooltip says so
                log.info("read-along: %s", exc)
                return
            if self._playback is not playback:
                return
            self._timings[i] = timings

    def _time_from_transcripts(self, playback: Playback) -> None:
        """A Realtime Speak: each piece's timings from its transcript timeline, rebuilt when it changed."""
        versions = self._timeline_versions
        if versions is None:
            return
        for i, timeline in enumerate(playback.session.transcript_timelines[:len(versions)]):
            if versions[i] != timeline.version:
                versions[i] = timeline.version
                self._timings[i] = self._timers[i].timings(timeline)

    def _drop_contradicted(self, snap: Snapshot) -> None:
        """Timings made from another synthesis than the one playing (a voice that is not deterministic, an engine
        that ignores the text) are dropped as soon as the audio received says so: more of it than they cover, or
        a piece whose exact length differs."""
        starts = snap.piece_starts_s
        for i, timings in enumerate(self._timings):
            if timings is None or timings.audio_s is None or i >= len(starts):
                continue
            done = i + 1 < len(starts) or snap.fetch_done
            received = (starts[i + 1] if i + 1 < len(starts) else snap.audio_received_s) - starts[i]
            slack = match_slack_s(timings.audio_s)
            if received > timings.audio_s + slack or (done and received < timings.audio_s - slack):
                log.info("read-along: piece %d's timings are of %.2f s of audio, %.2f s %s; they are not used",
                         i + 1, timings.audio_s, received, "played" if done else "arrived so far")
                self._timings[i] = None

    @staticmethod
    async def _keep_timings(playback: Playback, timings: list[Timings | None],
                            keep: Callable[[str, Timings], None]) -> None:
        """After the history hook has recorded `playback` (its ids arrive on this loop), keep its timings."""
        await playback.done.wait()
        metrics = playback.metrics
        if metrics is None or not metrics.completed:
            return  # a stopped Speak's audio ends early: timings of the whole text would outrun it
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KEEP_WAIT_S
        while not playback.recorded.is_set():  # polled: a waiter task would outlive a window closed meanwhile
            if loop.time() > deadline:
                log.warning("read-along: the history did not record the Speak within %.0f s; its timings are not "
                            "kept", KEEP_WAIT_S)
                return
            await asyncio.sleep(0.05)
        for entry_id, piece in zip(playback.history_ids, timings, strict=False):
            if entry_id is None or piece is None:
                continue
            try:
                await asyncio.to_thread(keep, entry_id, piece)
            except (HistoryError, OSError) as exc:  # the history then estimates them from the audio itself
                log.warning("read-along: the timings of %s were not kept: %s", entry_id, exc)

    async def wait_kept(self) -> None:
        """Wait until the timings being kept for the history are written (or given up). The window waits for
        them when it closes, after the player has recorded every Speak: the last Speak's read-along is not lost
        to a close that came within a poll of its end."""
        if self._playback is not None and self._playback.done.is_set():
            self._clear()  # it ended after the last refresh: start keeping its timings now, as refresh() would
        while self._keeping:
            await asyncio.gather(*list(self._keeping), return_exceptions=True)

    def _cancel_fetch(self) -> None:
        self._want_fetch = False
        if self._fetch is not None:
            self._fetch.cancel()
            self._fetch = None

    def _set_word(self, span: tuple[int, int] | None) -> None:
        if span != self.word:
            self.word = span
            if self._highlight_word is not None:
                self._highlight_word(span)

    def _set_sentence(self, span: tuple[int, int] | None) -> None:
        if span != self.sentence:
            self.sentence = span
            self._highlight(span)

    def _clear(self) -> None:
        if self._playback is not None:
            self._time_from_transcripts(self._playback)  # the last changes, for the history
        if self._playback is not None and self._keep is not None and any(t is not None for t in self._timings) \
                and self._playback.kind == "speak":
            task = asyncio.ensure_future(self._keep_timings(self._playback, list(self._timings), self._keep))
            self._keeping.add(task)  # a reference until it ends: the loop keeps only weak ones
            task.add_done_callback(self._keeping.discard)
        self._cancel_fetch()
        self._playback = None
        self._map = None
        self._timings = []
        self._timers = []
        self._timeline_versions = None
        if self.timed:
            self.timed = False
            self.setToolTip(TOOLTIP)
        self._set_word(None)
        self._set_sentence(None)
        if not self.isHidden():
            self.hide()
            self.clear()
