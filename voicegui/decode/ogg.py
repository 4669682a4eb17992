"""Incremental Ogg demuxer: cuts packets out of Ogg pages as their bytes arrive.

An Ogg page carries its segment (lacing) table up front, so a packet's end is known before its bytes come in;
packets are handed out the moment their last byte arrives instead of waiting for the rest of the page. That is
what gives Opus its first audio after ~1 KB. The page CRC is not checked, because checking it would mean
waiting for whole pages; the codec rejects damaged packets instead.

Threads: plain synchronous object, owned by whoever feeds it (the asyncio loop thread in voicegui); no threads,
no locks. Memory: bounded by one packet (capped at `max_packet`) plus one page header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_CAPTURE = b"OggS"
_HEADER_LEN = 27
_FLAG_CONTINUED = 0x01
_FLAG_BOS = 0x02
_FLAG_EOS = 0x04


class OggError(ValueError):
    """The bytes are not (or are no longer) an Ogg stream."""


@dataclass(frozen=True)
class OggPacket:
    data: bytes
    serial: int
    granule: int  # granule position of the page on which this packet ends
    bos: bool  # first packet of a logical stream (starts on a beginning-of-stream page)
    eos: bool  # ends on the end-of-stream page, so `granule` is the stream's final position
    oversized: bool = False  # longer than max_packet: `data` holds only the first max_packet bytes


class OggPacketReader:
    """feed(bytes) -> complete packets of the first logical stream (and of streams chained after it)."""

    def __init__(self, max_packet: int = 1 << 20, max_resync: int = 1 << 16) -> None:
        self._buf = bytearray()  # unparsed input: a page header in progress, or body bytes not yet consumed
        self._max_packet = max_packet
        self._max_resync = max_resync  # bytes of junk tolerated while hunting for the next "OggS"
        self._lacing: list[int] = []  # lacing values of the current page still to consume
        self._seg_left = 0  # bytes of the current segment still to arrive
        self._in_body = False
        self._page_flags = 0
        self._page_granule = -1
        self._page_serial = 0
        self._page_skip = False  # page of a logical stream we do not follow: consume its body, keep nothing
        self._serial: int | None = None  # the logical stream we follow
        self._ended = False  # the followed stream saw its EOS page; a new BOS may chain after it
        self._packet = bytearray()
        self._packet_len = 0  # true length, may exceed len(self._packet) when oversized
        self._packet_open = False  # a packet is in progress (possibly continuing on the next page)
        self._packet_bos = False
        self._junk = 0
        self._page_pos = 0
        self._orphan = False  # consuming the tail of a packet whose start was lost
        self.pages = 0

    @property
    def mid_unit(self) -> bool:
        """True if the input so far ends inside a page or inside a packet (a cut stream)."""
        return bool(self._buf) or self._in_body or self._packet_open or self._orphan

    @property
    def in_packet(self) -> bool:
        """True while a packet is being read (it may continue over any number of pages)."""
        return self._packet_open or self._orphan

    def feed(self, data: bytes) -> list[OggPacket]:
        self._buf += data
        out: list[OggPacket] = []
        while True:
            if self._in_body:
                if not self._consume_body(out):
                    break
            elif not self._read_header():
                break
        return out

    def _read_header(self) -> bool:
        buf = self._buf
        if len(buf) < 4:
            return False
        if buf[:4] != _CAPTURE:
            # lost sync (or never had it): skip to the next capture pattern, within limits
            at = buf.find(_CAPTURE, 1)
            drop = at if at >= 0 else max(0, len(buf) - 3)
            self._junk += drop
            del buf[:drop]
            self._packet_open = False  # whatever packet was in progress is lost
            self._packet.clear()
            if self._junk > self._max_resync or (self.pages == 0 and self._junk > 0):
                raise OggError("not an Ogg stream (no 'OggS' page where one was expected)")
            return at >= 0
        if len(buf) < _HEADER_LEN:
            return False
        version, flags, granule, serial, _seq, _crc, nseg = struct.unpack_from("<BBqIIIB", buf, 4)
        if version != 0:
            raise OggError(f"unsupported Ogg version {version}")
        if len(buf) < _HEADER_LEN + nseg:
            return False
        self._lacing = list(buf[_HEADER_LEN : _HEADER_LEN + nseg])
        del buf[: _HEADER_LEN + nseg]
        self._junk = 0
        self.pages += 1
        self._page_flags = flags
        self._page_granule = granule
        self._page_serial = serial
        if self._serial is None or (self._ended and flags & _FLAG_BOS):
            self._serial = serial  # first stream, or a new stream chained after the previous one ended
            self._ended = False
        self._page_skip = serial != self._serial
        if not self._page_skip:
            if not flags & _FLAG_CONTINUED and self._packet_open:
                # the previous page promised a continuation that never came: that packet is lost
                self._packet_open = False
                self._packet.clear()
            if flags & _FLAG_EOS:
                self._ended = True
        self._in_body = True
        self._seg_left = -1  # -1: next segment not started
        self._page_pos = 0  # index of the segment being consumed on this page
        return True

    def _consume_body(self, out: list[OggPacket]) -> bool:
        """Consume the body bytes available; False when more input is needed, True at the page's end."""
        buf = self._buf
        pos = 0
        try:
            while True:
                if self._seg_left < 0:
                    if not self._lacing:
                        self._in_body = False
                        return True
                    self._seg_left = self._lacing[0]
                    if not self._page_skip and not self._packet_open:
                        if self._page_flags & _FLAG_CONTINUED and self._page_pos == 0:
                            # tail of a packet whose start we never saw (joined mid-stream / resynced)
                            self._orphan = True
                        else:
                            self._start_packet()
                take = min(self._seg_left, len(buf) - pos)
                if take and self._packet_open and not self._page_skip:
                    room = self._max_packet - len(self._packet)
                    if room > 0:
                        self._packet += buf[pos : pos + min(take, room)]
                    self._packet_len += take
                pos += take
                self._seg_left -= take
                if self._seg_left > 0:
                    return False
                lace = self._lacing.pop(0)
                self._seg_left = -1
                self._page_pos += 1
                if lace < 255:
                    if self._orphan:
                        self._orphan = False
                    elif self._packet_open and not self._page_skip:
                        self._emit(out)
        finally:
            del buf[:pos]

    def _start_packet(self) -> None:
        self._packet_open = True
        self._packet_bos = bool(self._page_flags & _FLAG_BOS)
        self._packet.clear()
        self._packet_len = 0

    def _emit(self, out: list[OggPacket]) -> None:
        self._packet_open = False
        out.append(
            OggPacket(
                data=bytes(self._packet),
                serial=self._page_serial,
                granule=self._page_granule,
                bos=self._packet_bos,
                eos=bool(self._page_flags & _FLAG_EOS),
                oversized=self._packet_len > self._max_packet,
            )
        )
        self._packet.clear()
