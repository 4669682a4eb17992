"""The TLS contexts voicegui's HTTP clients use (the speech requests' httpx2 clients, stream/fetch.py and
stream/realtime.py), and `short_lived_client()`, the httpx2 client of a one-off call (the provider lists,
providers.py; a server's word timings, features/captioned.py).

Certificates are always verified; nothing here passes verify=False. Every client for an https server gets the
same context, httpx2's own default (system CAs, SSL_CERT_FILE / SSL_CERT_DIR from the environment), built once
by `shared_tls_context()`: building it reads the CA store (~20 ms of CPU and ~1.6 MB resident), which each
client would otherwise pay again (httpx2 builds a context per client, even for plain http). A client for a plain
http server (the built-in voices, most local servers) makes no TLS connection of its own, so it gets
`NO_CA_TLS_CONTEXT`: verifying, trusting no CA, built at no cost; should such a server redirect to https, that
handshake fails closed (stream/fetch.py's message then says to give the https address). `tls_ready(base_url)`
builds the shared context on a worker thread before the first https client is made, so the window's loop never
waits for the CA store.

`short_lived_client(base_url, timeout_s)` imports httpx2 on a worker thread (the window preloads it with the SDK,
and its first list may come while that preload still runs: its GUI thread must not wait for the import), reads
the CA store there too if the URL needs it, and gives a client with the right context.

Threads: the contexts may be shared by any number of connections and threads; a lock makes the shared one
once, on whichever thread asks first. The client is for the calling loop only. Qt-free.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import ssl
import threading
import urllib.parse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger(__name__)

_tls_lock = threading.Lock()
_tls_context: ssl.SSLContext | None = None


# The TLS context of clients for plain http servers (module docstring): PROTOCOL_TLS_CLIENT verifies (hostname and
# certificate) and no CA is loaded, so any handshake fails, closed.
NO_CA_TLS_CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def needs_ca_store(base_url: str) -> bool:
    """True if a client for `base_url` verifies TLS certificates itself (an https URL), so it needs the
    shared context and the system's CA store; plain http (and ws, whose client is made for http) needs neither."""
    return urllib.parse.urlsplit(base_url).scheme.lower() not in ("http", "ws")


def tls_context_for(base_url: str) -> ssl.SSLContext:
    """The TLS context a client for `base_url` gets: NO_CA_TLS_CONTEXT for plain http, else the shared
    verifying one (built here on first use: ssl.SSLError or OSError if the CA store cannot be read)."""
    return shared_tls_context() if needs_ca_store(base_url) else NO_CA_TLS_CONTEXT


def shared_tls_context() -> ssl.SSLContext:
    """httpx2's default TLS context (certificates verified against the system CAs), built on first use.

    An SSLContext may be shared by any number of connections and threads. Call it from a worker thread at
    start-up to take its cost off the first Speak.
    """
    import httpx2

    global _tls_context
    with _tls_lock:
        if _tls_context is None:
            _tls_context = httpx2.create_ssl_context()
        return _tls_context


def warm_tls_context() -> None:
    """Build the shared TLS context now (from a worker thread). A failure is only logged here: the next
    https request reports it (stream/fetch.py: a FetchError of kind 'tls')."""
    try:
        shared_tls_context()
    except (ssl.SSLError, OSError) as exc:
        log.warning("could not load the TLS certificates: %s", exc)


async def tls_ready(base_url: str) -> None:
    """Read the CA store on a worker thread, once, if a client for `base_url` needs it (so the loop's thread,
    the window's GUI thread, never waits for it). A failure is left to the client's maker, which tries again
    (`tls_context_for`) and reports it in its own terms."""
    if _tls_context is None and needs_ca_store(base_url):
        with contextlib.suppress(ssl.SSLError, OSError):
            await asyncio.to_thread(shared_tls_context)


async def short_lived_client(base_url: str, timeout_s: float, follow_redirects: bool = False) -> httpx2.AsyncClient:
    """An httpx2 client for one call to `base_url` (use it in `async with`), with the TLS context that URL gets;
    ssl.SSLError or OSError if an https URL's CA store cannot be read. See the module docstring."""
    client_module = await asyncio.to_thread(importlib.import_module, "httpx2")
    await tls_ready(base_url)
    client: httpx2.AsyncClient = client_module.AsyncClient(verify=tls_context_for(base_url), timeout=timeout_s,
                                                           follow_redirects=follow_redirects)
    return client
