"""voicegui.tls_contexts: the CA store is read once per process, off the loop's thread, and only for an https
(or wss) server; plain http uses a verifying context that loads no CA; an unreadable store is one clear error.
Through the real fetches (fetch_speech, fetch_realtime, openai_client) against the built-in server on 127.0.0.1."""

from __future__ import annotations

import pytest

from tests.replay_server import engine, server  # noqa: F401 (pytest fixtures, found by name)
from tests.stream.fetching import Collector, fetch as _fetch, fetch_fails as _fail, speech_request as _req
from voicegui.stream.fetch import FetchMarks, openai_client

PCM_BYTES = 2 * 48000  # 2 s at 24 kHz, 16-bit mono


async def test_plain_http_requests_never_read_the_ca_store(server, monkeypatch):  # noqa: F811 (the fixture)
    import ssl

    import httpcore2

    from voicegui import tls_contexts

    monkeypatch.setattr(tls_contexts, "_tls_context", None)  # as in a fresh process
    built = []
    real = httpcore2.default_ssl_context
    monkeypatch.setattr(httpcore2, "default_ssl_context", lambda *a, **k: built.append(1) or real(*a, **k))
    for _ in range(2):
        total, _, _ = await _fetch(_req(server.base_url))
        assert total == PCM_BYTES
    # Reading the CA store is ~20 ms and ~1.6 MB that a client for http:// never uses.
    assert built == [] and tls_contexts._tls_context is None
    ctx = tls_contexts.tls_context_for(server.base_url)
    assert ctx is tls_contexts.NO_CA_TLS_CONTEXT
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname  # a TLS hop it meets fails, closed
    assert ctx.cert_store_stats()["x509_ca"] == 0


def test_https_clients_share_one_verifying_tls_context(monkeypatch):
    import ssl

    import httpcore2

    from voicegui import tls_contexts

    monkeypatch.setattr(tls_contexts, "_tls_context", None)
    built = []
    real = httpcore2.default_ssl_context
    monkeypatch.setattr(httpcore2, "default_ssl_context", lambda *a, **k: built.append(1) or real(*a, **k))
    for _ in range(2):
        openai_client(_req("https://127.0.0.1:1/v1"))
    # The CA store is read once per process, not once per Speak.
    assert len(built) == 1
    ctx = tls_contexts.tls_context_for("https://127.0.0.1:1/v1")
    assert ctx is tls_contexts.shared_tls_context() and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def _count_ca_reads(monkeypatch) -> list[str]:
    """Reset the shared context (as in a fresh process); the names of the threads that read the CA store."""
    import threading

    import httpcore2

    from voicegui import tls_contexts

    monkeypatch.setattr(tls_contexts, "_tls_context", None)
    threads: list[str] = []
    real = httpcore2.default_ssl_context
    monkeypatch.setattr(httpcore2, "default_ssl_context",
                        lambda *a, **k: threads.append(threading.current_thread().name) or real(*a, **k))
    return threads


async def test_the_ca_store_is_read_off_the_loops_thread_and_only_for_https(monkeypatch):
    import threading

    from voicegui import tls_contexts

    threads = _count_ca_reads(monkeypatch)
    await tls_contexts.tls_ready("http://127.0.0.1:1/v1")
    await tls_contexts.tls_ready("ws://127.0.0.1:1/v1")
    assert threads == []
    await tls_contexts.tls_ready("https://127.0.0.1:1/v1")
    await tls_contexts.tls_ready("https://127.0.0.1:1/v1")
    assert len(threads) == 1 and threads[0] != threading.current_thread().name  # once, on a worker thread


async def test_a_realtime_fetch_reads_the_ca_store_off_the_loops_thread(monkeypatch):
    import threading

    from voicegui.stream.fetch import FetchError
    from voicegui.stream.realtime import fetch_realtime

    threads = _count_ca_reads(monkeypatch)
    req = _req("wss://127.0.0.1:1/v1", model="gpt-realtime-2.1-mini", voice="marin", timeout_s=5.0)
    with pytest.raises(FetchError):  # nothing listens there
        await fetch_realtime(req, FetchMarks(None, None, None), Collector())
    assert threads and threading.current_thread().name not in threads


async def test_unreadable_certificate_store_is_a_clear_tls_error(monkeypatch, caplog):
    from voicegui import tls_contexts

    monkeypatch.setattr(tls_contexts, "_tls_context", None)  # as in a fresh process
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    tls_contexts.warm_tls_context()  # start-up: logged, not raised
    assert "could not load the TLS certificates" in caplog.text
    err, _, col = await _fail(_req("https://127.0.0.1:1/v1"))
    assert err.kind == "tls" and "SSL_CERT_FILE" in str(err) and col.data == b""
