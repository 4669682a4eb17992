"""Faults a user meets, each produced for real (no mocks of our code): network, TLS, server bodies, device.

Every CLI case asserts: exit status 1 (0 where the audio still plays), one clear `voicegui: ...` line on
stderr and no traceback. In-process cases assert the SessionMetrics error and the state around it.

The device cases start their own PulseAudio (as tests/conftest.py does) so that killing it does not take the
suite's null sink with it.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import TOKEN, speak, speak_json
from tests.null_sink import keep_sink_running
from voicegui.server.benchclip import speech_like
from voicegui.server.shaping import Shaping
from voicegui.stream.fetch import SpeechRequest, insecure_http_warning
from voicegui.stream.session import SpeakOptions, SpeakSession


def request(server, fmt: str = "pcm", **kw) -> SpeechRequest:
    return SpeechRequest(base_url=server.base_url, api_key=TOKEN, model="tts-1", voice="alloy",
                         text="Hello there.", response_format=fmt, **kw)


def one_clear_line(res: subprocess.CompletedProcess, *words: str) -> str:
    """The `voicegui:` line of stderr; asserts no traceback and that it holds every word (case-insensitive)."""
    assert "Traceback" not in res.stderr, res.stderr
    # "voicegui: warning: ..." lines (plain http to another host) are advice, not the failure
    ours = [line for line in res.stderr.splitlines()
            if line.startswith("voicegui: ") and not line.startswith("voicegui: warning:")]
    assert len(ours) == 1, res.stderr
    line = ours[0]
    for word in words:
        assert word.lower() in line.lower(), line
    return line


class _Url:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url


# --- network -------------------------------------------------------------------------------------------------


def test_connection_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    res = speak(_Url(f"http://127.0.0.1:{port}/v1"), "--format", "mp3")
    assert res.returncode == 1
    one_clear_line(res, "connection refused", f"127.0.0.1:{port}")


def test_name_resolution_failure():
    res = speak(_Url("http://tts.invalid/v1"), "--format", "mp3")
    assert res.returncode == 1
    one_clear_line(res, "could not be resolved", "tts.invalid")


def _self_signed_cert(tmp: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (cryptography if installed, else the openssl CLI)."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        return cert, key
    import ipaddress

    pk = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    crt = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pk.public_key())
           .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
           .not_valid_after(now + datetime.timedelta(days=1))
           .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                          critical=False)
           .sign(pk, hashes.SHA256()))
    cert.write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(pk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cert, key


class _Listener:
    """A TCP listener on 127.0.0.1 whose thread hands each connection to `_answer` (set by a subclass)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _answer(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(5)
            self._answer(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class _TlsServer(_Listener):
    """An HTTPS listener with a self-signed certificate; it completes handshakes when it can and answers any
    request with a 500 (a client that verifies never gets that far)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.handshakes_failed = 0
        super().__init__()

    def _answer(self, conn: socket.socket) -> None:
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            conn.close()


def test_tls_certificate_not_trusted_fails_with_verification_on(tmp_path):
    cert, key = _self_signed_cert(tmp_path)
    srv = _TlsServer(cert, key)
    try:
        res = speak(_Url(f"https://127.0.0.1:{srv.port}/v1"), "--format", "mp3")
    finally:
        srv.close()
    assert res.returncode == 1
    line = one_clear_line(res, "certificate", "self-signed", f"127.0.0.1:{srv.port}")
    assert "verification stays on" in line
    assert srv.handshakes_failed >= 1  # the client refused during the handshake: it never sent the key


class _RedirectServer(_Listener):
    """A plain http listener that answers every request with a 307 to `location`."""

    def __init__(self, location: str) -> None:
        self.answer = (f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n"
                       "Connection: close\r\n\r\n").encode()
        super().__init__()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(self.answer)
            except OSError:
                pass  # the client went away: nothing to answer


def test_http_server_redirecting_to_https_says_to_use_the_https_address(tmp_path):
    # A plain http base URL's client trusts no CA (stream/fetch.py: it reads no CA store), so a redirect to
    # https fails closed in the handshake, and the line says what to do instead.
    cert, key = _self_signed_cert(tmp_path)
    tls = _TlsServer(cert, key)
    redirect = _RedirectServer(f"https://127.0.0.1:{tls.port}/v1/audio/speech")
    try:
        res = speak(_Url(f"http://127.0.0.1:{redirect.port}/v1"), "--format", "mp3")
    finally:
        redirect.close()
        tls.close()
    assert res.returncode == 1
    one_clear_line(res, f"127.0.0.1:{redirect.port}", "https address", "base URL")


def test_a_provider_list_redirected_to_https_says_to_use_the_https_address(tmp_path):
    # The provider lists' client gets the same context (voicegui/tls_contexts.py) as the speech request's.
    from voicegui import providers as pv

    cert, key = _self_signed_cert(tmp_path)
    tls = _TlsServer(cert, key)
    redirect = _RedirectServer(f"https://127.0.0.1:{tls.port}/v1/models")
    base_url = f"http://127.0.0.1:{redirect.port}/v1"
    try:
        with pytest.raises(pv.ProviderError) as info:
            asyncio.run(pv.list_models(base_url, None, timeout_s=10))
    finally:
        redirect.close()
        tls.close()
    message = str(info.value)
    assert message.startswith(base_url) and "give the https address" in message and "\n" not in message
    assert tls.handshakes_failed >= 1  # refused in the handshake: the key never went to the https server


def test_timeout_before_headers(shaped):
    shaped.shaping = Shaping(first_byte_delay_s=5.0)
    t0 = time.monotonic()
    res = speak(shaped, "--format", "mp3", "--timeout-s", "1")
    assert res.returncode == 1
    one_clear_line(res, "did not answer within 1 s")
    assert time.monotonic() - t0 < 30  # generous: it must not wait for the 5 s delay plus retries


def test_stream_cut_midway_plays_what_arrived(shaped):
    shaped.shaping = Shaping(cut_after_bytes=30000, write_bytes=1024)
    res, metrics = speak_json(shaped, "--format", "pcm")
    assert res.returncode == 1
    one_clear_line(res, "ended early", "after 30000 bytes", "played the")
    assert metrics["error_kind"] == "cut"
    assert metrics["audio_received_s"] == pytest.approx(30000 / 2 / 24000, abs=0.001)
    assert metrics["audio_played_s"] == pytest.approx(metrics["audio_received_s"], abs=0.001)


# --- what the server sends with status 200 -------------------------------------------------------------------

HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>"
             b"<p>The upstream server is unavailable.</p></body></html>\n")
JSON_ERROR = b'{"error": {"message": "Voice model is still loading, try again", "type": "server_error"}}'


@pytest.mark.parametrize("body,ctype,words", [
    (HTML_PAGE, "text/html", ["html", "instead of audio", "bad gateway"]),
    (JSON_ERROR, "application/json", ["json", "instead of audio", "still loading"]),
])
def test_error_body_with_status_200(shaped, body, ctype, words):
    shaped.shaping = Shaping(body_override=body, body_content_type=ctype)
    res, metrics = speak_json(shaped, "--format", "mp3")
    assert res.returncode == 1
    one_clear_line(res, *words)
    assert metrics["error_kind"] == "decode" and metrics["audio_played_s"] == 0


def _wav_bytes(seconds: float) -> tuple[bytes, np.ndarray]:
    samples = speech_like(seconds)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue(), samples


def test_different_format_than_asked_is_played_and_reported(shaped, tmp_path):
    body, samples = _wav_bytes(0.5)
    shaped.shaping = Shaping(body_override=body, body_content_type="audio/wav")
    out = tmp_path / "out.wav"
    res, metrics = speak_json(shaped, "--format", "mp3", "--out", str(out))
    assert res.returncode == 0, res.stderr
    line = one_clear_line(res, "asked for mp3", "sent wav", "playing it anyway")
    assert metrics["format_warning"] in line
    assert metrics["detected_format"] == "wav" and metrics["requested_format"] == "mp3"
    with wave.open(str(out)) as w:
        got = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(got, samples)  # played whole and exact


def test_garbage_with_status_200(shaped):
    garbage = np.random.default_rng(5).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    garbage = b"\x00" + garbage[1:]  # not a frame sync or text by chance
    shaped.shaping = Shaping(body_override=garbage)
    res, metrics = speak_json(shaped, "--format", "mp3")
    assert res.returncode == 1
    one_clear_line(res, "did not send mp3 audio")
    assert metrics["error_kind"] == "decode"


def test_empty_200_response(shaped):
    shaped.shaping = Shaping(body_override=b"", body_content_type="audio/mpeg")
    res, metrics = speak_json(shaped, "--format", "mp3")
    assert res.returncode == 1
    one_clear_line(res, "sent no audio")
    assert metrics["bytes_received"] == 0


# played_clock: Stop returns within 0.5 s and the session ends within 2 s (wall clock)
@pytest.mark.played_clock
async def test_trickle_1_byte_per_second_stop_is_immediate_and_closes_the_connection(shaped):
    shaped.shaping = Shaping(trickle_bytes_per_s=1.0, write_bytes=1)
    session = SpeakSession(SpeakOptions(request=request(shaped, "pcm", timeout_s=60)))
    task = asyncio.create_task(session.run())
    deadline = time.monotonic() + 15
    while session.bytes_received < 2:  # one sample's worth has trickled in: the stream is alive but starving
        assert time.monotonic() < deadline and not task.done(), "no byte arrived"
        await asyncio.sleep(0.02)
    t0 = time.monotonic()
    session.stop()
    stop_call_s = time.monotonic() - t0
    metrics = await asyncio.wait_for(task, 5)
    done_s = time.monotonic() - t0
    assert metrics.stopped and not metrics.completed and metrics.error is None
    assert stop_call_s < 0.5 and done_s < 2.0, (stop_call_s, done_s)
    deadline = time.monotonic() + 5
    while not shaped.records[-1].client_disconnected:
        assert time.monotonic() < deadline, "the server never saw the connection close"
        await asyncio.sleep(0.02)
    assert shaped.records[-1].bytes_sent < 20


# --- the audio device -----------------------------------------------------------------------------------------


class OwnPulse:
    """A private PulseAudio with a null sink on a socket of its own (same recipe as tests/conftest.py, the
    sink's monitor recorder included)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "native"
        self.proc: subprocess.Popen | None = None
        self.recorder: subprocess.Popen | None = None

    @property
    def server(self) -> str:
        return f"unix:{self.socket}"

    def start(self) -> None:
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(self.root), HOME=str(home))
        env.pop("PULSE_SERVER", None)
        self.proc = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--disallow-exit",
             f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
             "--load=module-null-sink sink_name=nullsink rate=48000", "--load=module-always-sink",
             f"--log-target=file:{self.root / 'pulse.log'}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            res = subprocess.run(["pactl", "info"], env=dict(os.environ, PULSE_SERVER=self.server),
                                 capture_output=True, text=True, timeout=10)
            if res.returncode == 0 and "nullsink" in res.stdout:
                self.recorder = keep_sink_running(dict(os.environ, PULSE_SERVER=self.server))
                return
            assert time.monotonic() < deadline and self.proc.poll() is None, "private PulseAudio did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test stopped it
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        if self.recorder is not None:  # its server is gone: it is ending, or ended, by itself
            self.recorder.kill()
            self.recorder.wait(10)
        self.recorder = None


@pytest.fixture
def own_pulse():
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed (make test installs it)")
    root = Path(tempfile.mkdtemp(prefix="voicegui-pulse2-"))
    pulse = OwnPulse(root)
    try:
        yield pulse
    finally:
        pulse.kill()
        shutil.rmtree(root, ignore_errors=True)


def speak_popen(server, pulse_server: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "voicegui", "speak", "Hello there.", "--base-url", server.base_url,
           "--api-key", TOKEN, "--model", "tts-1", "--voice", "alloy", "--json", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PULSE_SERVER=pulse_server))


def test_device_missing_at_start(shaped, tmp_path):
    proc = speak_popen(shaped, f"unix:{tmp_path / 'no-such-socket'}", "--format", "pcm")
    out, err = proc.communicate(timeout=60)
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert res.returncode == 1
    one_clear_line(res, "audio device", "no audio output device")
    assert json.loads(out)["error_kind"] == "device"


@pytest.fixture
def long_server(tmp_path_factory):
    """A replay server with a 4 s clip, paced at real time, so there is a mid-utterance to break."""
    from voicegui.server.benchclip import write_clip
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.server.thread import ServerThread

    path = write_clip(tmp_path_factory.mktemp("long") / "long.wav", 4.0)
    with ServerThread(ReplayEngine(path), Shaping(throughput_x=1.0), token=TOKEN) as srv:
        yield srv


def _wait_streaming(server, seconds: float) -> None:
    """Until the server has been sending its current response for `seconds`."""
    deadline = time.monotonic() + 30
    while True:
        recs = list(server.records)
        sent_at = recs[-1].first_byte_sent_at if recs else None
        if sent_at is not None and time.monotonic() - sent_at > seconds:
            return
        assert time.monotonic() < deadline, "the speak never started streaming"
        time.sleep(0.02)


# played_clock: the speak gives up within 15 s of the device going (wall clock, real-time server)
@pytest.mark.played_clock
def test_device_gone_mid_stream_then_next_speak_works(long_server, own_pulse):
    own_pulse.start()
    proc = speak_popen(long_server, own_pulse.server, "--format", "pcm")
    try:
        _wait_streaming(long_server, 1.0)
        own_pulse.kill()
        t_kill = time.monotonic()
        out, err = proc.communicate(timeout=30)  # no hang
    finally:
        if proc.poll() is None:
            proc.kill()
    ended_s = time.monotonic() - t_kill
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert res.returncode == 1, err
    one_clear_line(res, "audio output stopped", "went away")
    metrics = json.loads(out)
    assert metrics["error_kind"] == "device" and not metrics["completed"]
    assert ended_s < 15, ended_s  # it gave up promptly instead of fetching and "playing" into nothing

    own_pulse.start()  # the device is back
    proc = speak_popen(long_server, own_pulse.server, "--format", "pcm")
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["completed"]


# played_clock: the stall watchdog (STALL_S) times the device's silence on the wall clock
@pytest.mark.played_clock
def test_device_hung_mid_stream_is_noticed(long_server, own_pulse):
    """A sound server that stops answering (SIGSTOP) rather than dying: the stall watchdog ends the Speak."""
    own_pulse.start()
    proc = speak_popen(long_server, own_pulse.server, "--format", "pcm")
    try:
        _wait_streaming(long_server, 1.0)
        own_pulse.proc.send_signal(signal.SIGSTOP)
        out, err = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
        own_pulse.kill()
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert res.returncode == 1, err
    one_clear_line(res, "audio output stopped")
    assert json.loads(out)["error_kind"] == "device"


# --- plain http -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8880/v1", "http://127.3.4.5/v1", "http://localhost:8880/v1",
                                 "http://[::1]:8880/v1", "https://api.openai.com/v1", "https://192.168.1.5/v1",
                                 "not a url", ""])
def test_no_insecure_warning_for_loopback_or_https(url):
    assert insecure_http_warning(url) is None


@pytest.mark.parametrize("url", ["http://192.168.1.5:8880/v1", "http://tts.example.com/v1", "HTTP://10.0.0.2/v1",
                                 "http://[fe80::1]:8880/v1"])
def test_insecure_warning_for_plain_http_to_another_machine(url):
    text = insecure_http_warning(url)
    assert text is not None and "\n" not in text
    assert "unencrypted" in text and "https" in text


# --- hostile bodies: endless prefixes that never decode to audio ------------------------------------------------


class EndlessServer:
    """A misbehaving /v1/audio/speech on 127.0.0.1 (aiohttp, on the test's loop): status 200, `prefix`, then
    `filler` over and over until the client hangs up or `cap` bytes went out (so a client that never gives up
    still lets the test end)."""

    def __init__(self, prefix: bytes, filler: bytes, cap: int = 256 << 20) -> None:
        self.prefix, self.filler, self.cap = prefix, filler, cap
        self.sent = 0
        self.disconnected = asyncio.Event()
        self._runner = None

    async def __aenter__(self) -> EndlessServer:
        from aiohttp import web

        async def speech(request: web.Request) -> web.StreamResponse:
            await request.read()
            resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            await resp.prepare(request)
            try:
                await resp.write(self.prefix)
                self.sent = len(self.prefix)
                while self.sent < self.cap:
                    await resp.write(self.filler)
                    self.sent += len(self.filler)
            except (ConnectionError, asyncio.CancelledError):
                self.disconnected.set()
                raise
            return resp

        app = web.Application()
        app.router.add_post("/v1/audio/speech", speech)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


def _ogg_page(packets: list[bytes], flags: int = 0, open_end: bool = False) -> bytes:
    """One Ogg page holding `packets`; with open_end the last one continues on the next page."""
    lacing = bytearray()
    for i, packet in enumerate(packets):
        n = len(packet)
        lacing += b"\xff" * (n // 255)
        if not (open_end and i == len(packets) - 1):
            lacing.append(n % 255)
    assert len(lacing) <= 255
    return (b"OggS" + bytes([0, flags]) + (0).to_bytes(8, "little") + (7).to_bytes(4, "little")
            + b"\0" * 8 + bytes([len(lacing)]) + bytes(lacing) + b"".join(packets))


_WAV_FMT = b"fmt " + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") \
    + (24000).to_bytes(4, "little") + (48000).to_bytes(4, "little") + (2).to_bytes(2, "little") \
    + (16).to_bytes(2, "little")
_STREAMINFO = (4096).to_bytes(2, "big") * 2 + b"\0" * 6 + ((24000 << 44) | (0 << 41) | (15 << 36)).to_bytes(8, "big") \
    + b"\0" * 16
_OPUS_HEAD = b"OpusHead" + bytes([1, 1]) + (312).to_bytes(2, "little") + (24000).to_bytes(4, "little") + b"\0\0\0"

# format asked, the body's prefix, the filler repeated after it, words of the reason in the message
ENDLESS_PREFIXES = {
    "wav-junk-chunk": ("wav", b"RIFF\xff\xff\xff\xffWAVE" + _WAV_FMT + b"junk\xf0\xff\xff\x7f", b"\0" * 65536,
                       "'junk' chunk that never ends"),
    "wav-after-data": ("wav", b"RIFF\xff\xff\xff\xffWAVE" + _WAV_FMT + b"data\x04\0\0\0\x10\0\x10\0",
                       b"\0" * 65536, "after the end of the wav 'data' chunk"),
    "mp3-endless-id3": ("mp3", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f", b"\0" * 65536, "ID3 tag that never ends"),
    "aac-endless-id3": ("aac", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f", b"\xff" * 65536, "ID3 tag that never ends"),
    "opus-header-pages-only": ("opus", _ogg_page([_OPUS_HEAD], flags=2), _ogg_page([]) * 2000,
                               "Ogg header pages only"),
    "opus-endless-packet": ("opus", _ogg_page([_OPUS_HEAD], flags=2)
                            + _ogg_page([b"OpusTags" + b"\0" * 247], open_end=True),
                            _ogg_page([b"\0" * 255 * 255], flags=1, open_end=True), "Ogg packet that never ends"),
    "flac-endless-metadata": ("flac", b"fLaC" + b"\x00" + (34).to_bytes(3, "big") + _STREAMINFO
                              + b"\x01\xff\xff\xff", b"\0" * 65536, "flac metadata block that never ends"),
}


@pytest.mark.parametrize("case", sorted(ENDLESS_PREFIXES))
async def test_endless_prefix_without_audio_ends_with_a_decode_error_and_bounded_memory(case):
    from tests.procstats import rss_mb

    fmt, prefix, filler, words = ENDLESS_PREFIXES[case]
    async with EndlessServer(prefix, filler) as srv:
        before = rss_mb()
        # keep_original as the window does (history cache): nothing it keeps may grow without bound either
        session = SpeakSession(SpeakOptions(request=request(srv, fmt, timeout_s=30), keep_original=True))
        metrics = await asyncio.wait_for(session.run(), 120)
        grown = rss_mb() - before
        await asyncio.wait_for(srv.disconnected.wait(), 10)  # the connection was closed, not left open
    assert metrics.error_kind == "decode", metrics
    assert "without any audio" in metrics.error and words in metrics.error, metrics.error
    assert "\n" not in metrics.error
    # limits.MAX_BYTES_WITHOUT_AUDIO (1 MiB), plus generous room for one network read and the socket buffers
    assert metrics.bytes_received <= 2 << 20, metrics.bytes_received
    assert srv.sent < 64 << 20, srv.sent
    assert grown < 100, f"RSS grew {grown:.0f} MB"


async def test_endless_prefix_cli_gives_one_clear_line():
    fmt, prefix, filler, _ = ENDLESS_PREFIXES["wav-junk-chunk"]
    async with EndlessServer(prefix, filler) as srv:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voicegui", "speak", "Hello there.", "--base-url", srv.base_url, "--api-key",
            TOKEN, "--model", "tts-1", "--voice", "alloy", "--format", fmt,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    res = subprocess.CompletedProcess([], proc.returncode, out.decode(), err.decode())
    assert res.returncode == 1, res.stderr
    one_clear_line(res, "without any audio", "'junk' chunk that never ends")


async def test_original_body_past_its_bound_is_dropped_and_playback_goes_on(shaped):
    shaped.shaping = Shaping(write_bytes=4096)
    req = request(shaped, "pcm")
    session = SpeakSession(SpeakOptions(request=req, keep_original=True,
                                        continuation=(request(shaped, "pcm"),)))  # two bodies, one utterance
    session.max_original_bytes = 40000  # below one 1.2 s pcm body (57600 bytes): the test's "endless" stream
    metrics = await asyncio.wait_for(session.run(), 60)
    assert metrics.completed and metrics.error is None, metrics
    assert metrics.bytes_received == 2 * 57600
    assert metrics.audio_played_s == pytest.approx(metrics.audio_received_s, abs=0.01)  # played to the end
    assert session.original_truncated
    assert session.original_bytes == b"" and session.original_pieces == [b"", b""]  # nothing partial kept


async def test_original_body_within_its_bound_is_kept_whole(shaped):
    session = SpeakSession(SpeakOptions(request=request(shaped, "pcm"), keep_original=True))
    session.max_original_bytes = 57600
    metrics = await asyncio.wait_for(session.run(), 60)
    assert metrics.completed and not session.original_truncated
    assert len(session.original_bytes) == 57600
