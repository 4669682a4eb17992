"""A private D-Bus session bus and a stand-in for the desktop's GlobalShortcuts portal, for the tests of
ui/global_shortcut.py (a real portal needs a desktop session; this machine has none).

`private_bus()` starts Debian's dbus-daemon (package dbus) on a socket of its own and stops it afterwards;
nothing else on the machine sees it. `PortalStub` owns org.freedesktop.portal.Desktop on that bus and answers
as xdg-desktop-portal does (data/org.freedesktop.portal.GlobalShortcuts.xml): CreateSession and BindShortcuts
return a Request object path built from the caller's unique name and its handle_token, then emit that
Request's Response signal; `fire(id)` emits Activated for the bound session, as the desktop does when the user
presses the key. It speaks D-Bus through jeepney (installed with keyring on Linux), in its own thread, so the
code under test (QtDBus on the Qt thread) and the stand-in share nothing but the bus.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_call, new_method_return, new_signal
from jeepney.io.blocking import open_dbus_connection

BUS_NAME = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
IFACE = "org.freedesktop.portal.GlobalShortcuts"


@contextmanager
def private_bus() -> Iterator[str]:
    """A session bus of the test's own: yields its address."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        raise RuntimeError("dbus-daemon is missing: install the Debian package dbus (make system-packages-test)")
    proc = subprocess.Popen([daemon, "--session", "--nofork", "--print-address=1", "--nopidfile"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        if not address:
            raise RuntimeError(f"dbus-daemon printed no address (exit code {proc.poll()})")
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Call:
    member: str
    body: tuple[Any, ...]
    sender: str


@dataclass
class PortalStub:
    """The stand-in portal. `version` 0 leaves the GlobalShortcuts interface out (an older portal);
    `bind_response` is the Response code BindShortcuts gives (0 bound, 1 the user cancelled, 2 other)."""

    address: str
    version: int = 1
    bind_response: int = 0
    triggers: dict[str, str] = field(default_factory=dict)  # id -> the trigger the desktop chose
    calls: list[Call] = field(default_factory=list)
    session: str | None = None

    def __post_init__(self) -> None:
        self._commands: queue.Queue[tuple[str, str]] = queue.Queue()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="portal-stub", daemon=True)

    def __enter__(self) -> PortalStub:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the stand-in portal did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def fire(self, shortcut_id: str) -> None:
        """What the desktop does when the user presses the bound key."""
        self._commands.put(("activate", shortcut_id))

    def bound(self) -> list[tuple[str, dict[str, Any]]]:
        """The shortcuts the client asked to bind (id, {key: value}), variants unwrapped."""
        for call in self.calls:
            if call.member == "BindShortcuts":
                return [(sid, {k: v[1] for k, v in info.items()}) for sid, info in call.body[1]]
        return []

    def _run(self) -> None:
        try:
            conn = open_dbus_connection(bus=self.address)
        except BaseException as exc:
            self._error = exc
            raise
        with conn:
            bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                              interface="org.freedesktop.DBus")
            reply = conn.send_and_get_reply(new_method_call(bus, "RequestName", "su", (BUS_NAME, 4)))
            assert reply.body == (1,), reply.body  # the primary owner
            self._ready.set()
            while not self._stop.is_set():
                while not self._commands.empty():
                    _what, sid = self._commands.get()
                    if self.session is not None:
                        conn.send(new_signal(DBusAddress(PATH, interface=IFACE), "Activated", "osta{sv}",
                                             (self.session, sid, int(time.time() * 1000), {})))
                try:
                    msg = conn.receive(timeout=0.02)
                except TimeoutError:
                    continue
                if msg.header.message_type is MessageType.method_call:
                    for out in self._answer(msg):
                        conn.send(out)

    def _answer(self, msg: Any) -> list[Any]:
        fields = msg.header.fields
        member, iface = fields.get(HeaderFields.member), fields.get(HeaderFields.interface)
        sender = fields.get(HeaderFields.sender, "")
        self.calls.append(Call(member, msg.body, sender))
        if iface == "org.freedesktop.DBus.Properties" and member == "Get":
            if msg.body[0] == IFACE and self.version > 0 and msg.body[1] == "version":
                return [new_method_return(msg, "v", (("u", self.version),))]
            return [new_error(msg, "org.freedesktop.DBus.Error.UnknownInterface", "s",
                              (f"no interface {msg.body[0]}",))]
        if iface == "org.freedesktop.portal.Session" and member == "Close":
            if msg.header.fields.get(HeaderFields.path) == self.session:
                self.session = None
            return [new_method_return(msg)]
        if iface != IFACE or self.version == 0:
            return [new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no {iface}.{member}",))]
        caller = sender.lstrip(":").replace(".", "_")
        if member == "CreateSession":
            options = msg.body[0]
            request = f"{PATH}/request/{caller}/{options['handle_token'][1]}"
            self.session = f"{PATH}/session/{caller}/{options['session_handle_token'][1]}"
            return [new_method_return(msg, "o", (request,)),
                    self._response(request, 0, {"session_handle": ("s", self.session)})]
        if member == "BindShortcuts":
            session, shortcuts, _parent, options = msg.body
            request = f"{PATH}/request/{caller}/{options['handle_token'][1]}"
            if session != self.session:
                return [new_error(msg, "org.freedesktop.portal.Error.InvalidArgument", "s", ("unknown session",))]
            # The desktop keeps the preferred trigger unless the user (here: `triggers`) chose another.
            bound = [(sid, {"description": info["description"],
                            "trigger_description": ("s", self.triggers.get(sid, info["preferred_trigger"][1]))})
                     for sid, info in shortcuts]
            results = {"shortcuts": ("a(sa{sv})", bound)} if self.bind_response == 0 else {}
            return [new_method_return(msg, "o", (request,)), self._response(request, self.bind_response, results)]
        return [new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no {member}",))]

    @staticmethod
    def _response(request_path: str, code: int, results: dict[str, Any]) -> Any:
        return new_signal(DBusAddress(request_path, interface="org.freedesktop.portal.Request"), "Response",
                          "ua{sv}", (code, results))


def bus_env(address: str) -> dict[str, str]:
    """The environment of a child process that should use `address` as its session bus."""
    return dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address)
