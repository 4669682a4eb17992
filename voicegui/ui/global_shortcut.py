"""Global shortcuts through the desktop's GlobalShortcuts portal (org.freedesktop.portal.GlobalShortcuts,
version >= 1): "Speak selection" and "Stop" keys that work while another program has the focus.

Where the session bus offers the portal, the window creates a session (CreateSession), asks for its two
shortcuts with preferred triggers (BindShortcuts; the desktop may show a dialog and the user may pick other
keys or refuse), and then listens for the portal's Activated signal for that session. An activation goes to
the window as the matching hand-off request (ui/instance.WindowCommands, ops "speak-selection" and "stop"),
i.e. exactly what `voicegui speak --selection` and `voicegui stop` do from a key bound in the desktop. The
portal's calls follow its request/response pattern: each call returns an org.freedesktop.portal.Request
object path built from our unique name and the handle_token we pass, and the result arrives later as that
Request's Response signal (0 = done, 1 = the user cancelled, 2 = failed); the Response match is added before
the call, so a fast portal's answer is not missed.

Where there is no session bus, no portal, an older portal without GlobalShortcuts, or the user refuses the
binding, nothing breaks: one log line says why, `bound` stays empty and Help > Speak from anywhere shows how
to bind `voicegui speak --selection` to a key by hand instead of the portal's keys.

Why jeepney and not PySide6.QtDBus: BindShortcuts takes an array of (string, dict) structures, and PySide6's
QtDBus can neither marshal one (QDBusArgument.beginArray needs the element type registered with
qDBusRegisterMetaType, which PySide6 does not expose) nor read the portal's answer of that shape (the
read-only beginStructure/beginMapEntry overloads are not reachable from Python; libdbus aborts the process).
jeepney is pure Python and already installed with keyring on Linux; its asyncio router runs on the window's
qasync loop.

Threads: the GUI thread only; the bus connection is a task on the window's asyncio (qasync) loop, so the
handler runs there and may touch widgets. Nothing here blocks: a portal that never answers leaves the
shortcuts unbound (and the Help text on the how-to), the window unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jeepney import (  # type: ignore[import-untyped]
    DBusAddress,
    DBusErrorResponse,
    HeaderFields,
    MatchRule,
    Message,
    MessageType,
    new_method_call,
)
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.asyncio import DBusConnection, DBusRouter, open_dbus_connection  # type: ignore[import-untyped]

from voicegui.instance_protocol import Reply, Request

log = logging.getLogger(__name__)

PORTAL_NAME = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
INTERFACE = "org.freedesktop.portal.GlobalShortcuts"
REQUEST_INTERFACE = "org.freedesktop.portal.Request"
SESSION_INTERFACE = "org.freedesktop.portal.Session"
CALL_TIMEOUT_S = 10.0  # a method call's return (not the Response: that may wait for the user's dialog)
RESPONSES = {1: "the request was cancelled (the shortcut dialog was closed without binding)",
             2: "the portal could not bind them"}


@dataclass(frozen=True)
class Shortcut:
    op: str  # the hand-off request it sends (instance_protocol.OPS); also its portal shortcut id
    description: str
    preferred_trigger: str  # the XDG shortcuts spec's notation
    label: str  # what the Help dialog shows when the desktop does not say how to trigger it


SHORTCUTS = (Shortcut("speak-selection", "Speak the selected text", "CTRL+ALT+S", "Ctrl+Alt+S"),
             Shortcut("stop", "Stop speaking", "CTRL+ALT+X", "Ctrl+Alt+X"))

Commands = Callable[[Request], Reply]


def session_bus_address() -> str | None:
    """The session bus's address: $DBUS_SESSION_BUS_ADDRESS, else systemd's per-user socket, else None."""
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if address:
        return address
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and (Path(runtime) / "bus").exists():
        return f"unix:path={Path(runtime) / 'bus'}"
    return None


def _token() -> str:
    return "voicegui_" + secrets.token_hex(6)


def _object_path_part(unique_name: str) -> str:
    """The caller part of a portal Request/Session path: ':1.42' -> '1_42'."""
    return unique_name.lstrip(":").replace(".", "_")


class PortalRefused(Exception):
    """The portal is missing or said no; str() is the sentence for the log."""


class GlobalShortcuts:
    """The window's portal shortcuts. `commands` takes the hand-off request of an activated shortcut (the
    window's WindowCommands); `notify` shows a refused request's sentence (nothing else would: no command
    line waits for the reply). `address` is the bus (default: the session bus)."""

    def __init__(self, commands: Commands, notify: Callable[[str], None], address: str | None = None) -> None:
        self.commands, self.notify = commands, notify
        self.address = address if address is not None else session_bus_address()
        self.bound: dict[str, str] = {}  # op -> how to trigger it, as the desktop describes it; empty: not bound
        self.problem: str | None = None  # why there are no portal shortcuts, once known
        self.session: str | None = None
        self.activations = 0
        self.settled = asyncio.Event()  # set once the keys are bound or known to be unavailable
        self._conn: DBusConnection | None = None
        self._router: DBusRouter | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Start binding and listening in a task on the running loop; it ends when `close()` is called or
        the portal is unavailable."""
        self._task = asyncio.ensure_future(self._run())
        return self._task

    def trigger_text(self) -> str | None:
        """'Ctrl+Alt+S speaks the selection, ...' when the portal bound the keys, else None."""
        if not self.bound:
            return None
        what = {"speak-selection": "speaks the selection", "stop": "stops"}
        return ", ".join(f"{trigger} {what.get(op, op)}" for op, trigger in self.bound.items())

    async def close(self) -> None:
        """End the portal session (the desktop releases the keys) and the bus connection."""
        router, self._router = self._router, None
        if router is not None and self.session is not None:
            close = new_method_call(DBusAddress(self.session, PORTAL_NAME, SESSION_INTERFACE), "Close")
            with contextlib.suppress(OSError, asyncio.TimeoutError, DBusErrorResponse, ConnectionError):
                await asyncio.wait_for(router.send_and_get_reply(close), 2)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if router is not None:
            await router.__aexit__(None, None, None)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _run(self) -> None:
        if self.address is None:
            self._unavailable("there is no D-Bus session bus ($DBUS_SESSION_BUS_ADDRESS is not set)")
            return
        try:
            self._conn = await asyncio.wait_for(open_dbus_connection(self.address), CALL_TIMEOUT_S)
        except (TimeoutError, OSError, ValueError, EOFError) as exc:
            self._unavailable(f"the D-Bus session bus at {self.address} cannot be reached ({exc})")
            return
        self._router = router = DBusRouter(self._conn)
        try:
            await self._check_version(router)
            session = await self._create_session(router)
            # Listen before binding: a key pressed right after the dialog must not be lost.
            with router.filter(MatchRule(type="signal", interface=INTERFACE, member="Activated",
                                         path=PORTAL_PATH), queue=asyncio.Queue()) as activated:
                await self._add_match(router, MatchRule(type="signal", sender=PORTAL_NAME, interface=INTERFACE,
                                                        member="Activated", path=PORTAL_PATH))
                await self._bind(router, session)
                self.settled.set()
                log.info("global shortcuts bound through the desktop's portal: %s", self.trigger_text())
                while True:
                    self._on_activated(await activated.get())
        except PortalRefused as exc:
            self._unavailable(str(exc))
        except (TimeoutError, OSError, EOFError, ConnectionError) as exc:
            self._unavailable(f"the D-Bus connection failed ({exc!r})")

    def _unavailable(self, why: str) -> None:
        self.problem = why
        self.bound = {}
        self.settled.set()
        log.info("no global shortcuts from the desktop's portal: %s; bind `voicegui speak --selection` to a key "
                 "in the desktop's settings (Help > Speak from anywhere)", why)

    @staticmethod
    async def _call(router: DBusRouter, message: Message) -> tuple[Any, ...]:
        reply = await asyncio.wait_for(router.send_and_get_reply(message), CALL_TIMEOUT_S)
        try:
            return tuple(reply.body) if _is_return(reply) else _raise(reply)
        except DBusErrorResponse as exc:
            raise PortalRefused(f"the portal refused {message.header.fields[HeaderFields.member]} ({exc.name}: "
                                f"{exc.data[0] if exc.data else ''})") from None

    @staticmethod
    async def _add_match(router: DBusRouter, rule: MatchRule) -> None:
        await asyncio.wait_for(router.send_and_get_reply(message_bus.AddMatch(rule)), CALL_TIMEOUT_S)

    async def _check_version(self, router: DBusRouter) -> None:
        get = new_method_call(DBusAddress(PORTAL_PATH, PORTAL_NAME, "org.freedesktop.DBus.Properties"), "Get",
                              "ss", (INTERFACE, "version"))
        try:
            (variant,) = await self._call(router, get)
        except PortalRefused as exc:
            raise PortalRefused(f"the session bus offers no {INTERFACE} portal ({exc})") from None
        version = variant[1] if isinstance(variant, tuple) else variant
        if not isinstance(version, int) or version < 1:
            raise PortalRefused(f"the desktop's {INTERFACE} portal is version {version!r}; version 1 or later "
                                "is needed")

    async def _request(self, router: DBusRouter, member: str, signature: str, body: tuple[Any, ...],
                       token: str) -> dict[str, Any]:
        """Call a portal method that answers through a Request's Response signal; the results, unwrapped."""
        path = f"{PORTAL_PATH}/request/{_object_path_part(router.unique_name)}/{token}"
        rule = MatchRule(type="signal", interface=REQUEST_INTERFACE, member="Response")
        with router.filter(rule, queue=asyncio.Queue()) as responses:
            await self._add_match(router, MatchRule(type="signal", sender=PORTAL_NAME, interface=REQUEST_INTERFACE,
                                                    member="Response", path=path))
            (handle,) = await self._call(router, new_method_call(DBusAddress(PORTAL_PATH, PORTAL_NAME, INTERFACE),
                                                                 member, signature, body))
            if handle != path:  # a portal older than the handle_token convention: its own path
                await self._add_match(router, MatchRule(type="signal", sender=PORTAL_NAME,
                                                        interface=REQUEST_INTERFACE, member="Response", path=handle))
            while True:
                msg = await responses.get()  # no timeout: BindShortcuts waits for the user's dialog
                if msg.header.fields.get(HeaderFields.path) == handle:
                    break
        code, results = msg.body
        if code != 0:
            raise PortalRefused(f"{member}: {RESPONSES.get(code, f'the portal answered {code}')}")
        return {key: value[1] for key, value in results.items()}

    async def _create_session(self, router: DBusRouter) -> str:
        token = _token()
        results = await self._request(router, "CreateSession", "a{sv}",
                                      ({"handle_token": ("s", token), "session_handle_token": ("s", _token())},),
                                      token)
        session = results.get("session_handle")
        if not isinstance(session, str) or not session:
            raise PortalRefused("CreateSession answered without a session handle")
        self.session = session
        return session

    async def _bind(self, router: DBusRouter, session: str) -> None:
        token = _token()
        shortcuts = [(s.op, {"description": ("s", s.description), "preferred_trigger": ("s", s.preferred_trigger)})
                     for s in SHORTCUTS]
        results = await self._request(router, "BindShortcuts", "oa(sa{sv})sa{sv}",
                                      (session, shortcuts, "", {"handle_token": ("s", token)}), token)
        labels = {s.op: s.label for s in SHORTCUTS}
        bound: dict[str, str] = {}
        for op, info in results.get("shortcuts", []):
            if op in labels:
                described = info.get("trigger_description", ("s", ""))[1]
                bound[op] = str(described) or labels[op]
        if not bound:
            raise PortalRefused("BindShortcuts bound none of the shortcuts")
        self.bound = bound

    def _on_activated(self, msg: Message) -> None:
        session, op, _timestamp, _options = msg.body
        if session != self.session:
            return  # another session of ours (none) or a stray signal
        if op not in self.bound:
            log.warning("the shortcut portal activated %r, which voicegui did not bind; ignored", op)
            return
        self.activations += 1
        log.info("global shortcut %s (%s) pressed", op, self.bound[op])
        reply = self.commands(Request(op))
        if not reply.ok:
            self.notify(reply.message)


def _is_return(reply: Message) -> bool:
    return reply.header.message_type is MessageType.method_return


def _raise(reply: Message) -> tuple[Any, ...]:
    raise DBusErrorResponse(reply)


def install(window: Any, commands: Commands, tray: Any | None = None, address: str | None = None) -> GlobalShortcuts:
    """The window's portal shortcuts, started on the running loop. A refused activation (nothing selected,
    say) is shown in the window's banner, or as the tray's notification while the window is hidden. Help >
    Speak from anywhere reads `window.global_shortcuts` to say which keys are bound."""

    def notify(message: str) -> None:
        if tray is not None and not window.isVisible():
            tray.notify(message)
        else:
            window.show_error(message)

    shortcuts = GlobalShortcuts(commands, notify, address)
    window.global_shortcuts = shortcuts
    shortcuts.start()
    return shortcuts
