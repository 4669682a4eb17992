"""The single-instance hand-off: where the running window's socket is, and the messages sent over it.

A second `voicegui` (or `voicegui speak ...`, `voicegui stop`) connects to the running window's local socket
and sends one request; the window answers with one reply and closes the connection. Both sides share this
module: the window's server (ui/instance.py, QLocalServer) and the command line's plain AF_UNIX client
(cli/handoff.py), which must not import Qt or the openai SDK before it knows no window runs.

Wire format, version 1: a 4-byte big-endian length, then that many bytes of UTF-8 JSON, one object.
Request: {"v": 1, "op": "speak" | "speak-selection" | "speak-clipboard" | "stop" | "show", "text": str}
("text" only with "speak"). Reply: {"v": 1, "ok": bool, "message": str}. A message over MAX_MESSAGE_BYTES,
not JSON, of another version or with an unknown op is refused with a reply naming why (ProtocolError).

The socket lives in a directory only this user can enter (0700): $VOICEGUI_RUNTIME_DIR if set (tests), else
$XDG_RUNTIME_DIR/voicegui, else a voicegui-<uid> directory in the temp dir, which must be ours and not a link.
The server also checks each peer's uid (SO_PEERCRED), so a socket reached some other way is still refused.

A base module: plain sockets and json, nothing of voicegui's packages; the client functions block (the CLI's
main thread; the window never calls them on its GUI thread except `connect_state` at start, which is a
local connect that answers at once).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import struct
from collections import namedtuple
from enum import Enum

# Not typing's: a handed-over `voicegui speak` imports this module, and typing costs it ~9 ms of CPU (it
# imports re and builds its generics); mypy treats this name as typing's.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path  # made where used: the command line's hand-off works on the str path
    from typing import NamedTuple

VERSION = 1
RUNTIME_ENV = "VOICEGUI_RUNTIME_DIR"
SOCKET_NAME = "instance.sock"
HEADER = struct.Struct(">I")
# The window takes texts up to 200 000 characters (limits.MAX_TEXT_CHARS): 4 bytes each at worst.
MAX_MESSAGE_BYTES = 1 << 20
OPS = ("speak", "speak-selection", "speak-clipboard", "stop", "show")
CLIENT_TIMEOUT_S = 5.0  # the window replies at once; a window that does not is hung, not busy
PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ProtocolError(ValueError):
    """A message that breaks the protocol; str() is the sentence sent back to the client."""


class WindowState(Enum):
    NONE = "none"  # no socket file: no window runs
    STALE = "stale"  # a socket file nobody listens on (a crashed window): safe to remove
    RUNNING = "running"


# Named tuples, not dataclasses: `voicegui speak` handed to the window imports this module first, and
# dataclasses brings inspect (~10 ms of CPU). mypy sees typing.NamedTuple; at run time the same class comes
# from collections (which typing.NamedTuple calls itself), without importing typing.
if TYPE_CHECKING:
    class Request(NamedTuple):
        op: str
        text: str = ""

    class Reply(NamedTuple):
        ok: bool
        message: str
else:
    Request = namedtuple("Request", ["op", "text"], defaults=[""])
    Reply = namedtuple("Reply", ["ok", "message"])


def runtime_dir_name() -> str:
    """The directory for the socket, as a str (not created here: `ensure_runtime_dir` does)."""
    override = os.environ.get(RUNTIME_ENV)
    if override:
        return override
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "voicegui")
    import tempfile  # only here: with $XDG_RUNTIME_DIR set (a desktop session) it is not needed

    return os.path.join(tempfile.gettempdir(), f"voicegui-{os.getuid()}")


def socket_file() -> str:
    """The socket's path as a str: what the command line's hand-off connects to (pathlib costs it ~5 ms)."""
    return os.path.join(runtime_dir_name(), SOCKET_NAME)


def runtime_dir() -> Path:
    from pathlib import Path

    return Path(runtime_dir_name())


def socket_path() -> Path:
    from pathlib import Path

    return Path(socket_file())


def ensure_runtime_dir(path: Path | None = None) -> Path:
    """Create the socket's directory with mode 0700, or check an existing one is a real directory of ours
    and make it 0700; OSError with a sentence if it is not ours (someone else could read the socket)."""
    path = path or runtime_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(errno.EPERM, f"{path} is not a directory of this user; remove it or set "
                                   f"${RUNTIME_ENV} to another directory")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def encode(obj: dict[str, object]) -> bytes:
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"the message is {len(data)} bytes, over the limit of {MAX_MESSAGE_BYTES}")
    return HEADER.pack(len(data)) + data


def encode_request(request: Request) -> bytes:
    obj: dict[str, object] = {"v": VERSION, "op": request.op}
    if request.op == "speak":
        obj["text"] = request.text
    return encode(obj)


def encode_reply(reply: Reply) -> bytes:
    return encode({"v": VERSION, "ok": reply.ok, "message": reply.message})


def body_length(header: bytes) -> int:
    """The length a 4-byte header announces; ProtocolError if it is over the limit."""
    (length,) = HEADER.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"the message announces {length} bytes, over the limit of {MAX_MESSAGE_BYTES}")
    return int(length)


def _object(body: bytes) -> dict[str, object]:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the message is not UTF-8 JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ProtocolError("the message is not a JSON object")
    if obj.get("v") != VERSION:
        raise ProtocolError(f"protocol version {obj.get('v')!r} is not understood (this voicegui speaks "
                            f"version {VERSION}); use the same voicegui for the window and the command")
    return obj


def decode_request(body: bytes) -> Request:
    obj = _object(body)
    op, text = obj.get("op"), obj.get("text", "")
    if op not in OPS:
        raise ProtocolError(f"unknown request {op!r}; known: {', '.join(OPS)}")
    if not isinstance(text, str):
        raise ProtocolError("the text to speak is not a string")
    return Request(str(op), text)


def decode_reply(body: bytes) -> Reply:
    obj = _object(body)
    ok, message = obj.get("ok"), obj.get("message")
    if not isinstance(ok, bool) or not isinstance(message, str):
        raise ProtocolError("the window's reply has no ok/message")
    return Reply(ok, message)


def peer_problem(ucred: bytes, own_uid: int) -> str | None:
    """Why a peer whose SO_PEERCRED is `ucred` may not talk to this window (another user), or None."""
    _pid, uid, _gid = PEERCRED.unpack(ucred)
    if uid != own_uid:
        return f"refused: the connecting process belongs to user id {uid}, this window to {own_uid}"
    return None


def peer_credentials(fd: int) -> bytes:
    """SO_PEERCRED of the connected unix socket `fd` (the descriptor is duplicated, not taken over)."""
    sock = socket.fromfd(fd, socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size)
    finally:
        sock.close()


def connect(path: Path | str | None = None, timeout_s: float = CLIENT_TIMEOUT_S,
            own_uid: int | None = None) -> tuple[WindowState, socket.socket | None]:
    """Connect to the window's socket: (RUNNING, the socket), or (NONE | STALE, None). OSError (EPERM, with a
    sentence) if the process listening there is another user's: nothing is sent to it (the text to speak
    could be private), whoever made the directory first."""
    path = path or socket_file()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, NotADirectoryError):
        sock.close()
        return WindowState.NONE, None
    except ConnectionRefusedError:
        sock.close()
        return WindowState.STALE, None
    except OSError:
        sock.close()
        raise
    _pid, uid, _gid = PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size))
    own_uid = os.getuid() if own_uid is None else own_uid
    if uid != own_uid:
        sock.close()
        raise OSError(errno.EPERM, f"{path} is held by a process of user id {uid}, not by a voicegui window of "
                                   f"user id {own_uid}; nothing was sent to it. Remove it, or set ${RUNTIME_ENV} "
                                   "to a directory of your own")
    return WindowState.RUNNING, sock


def window_state(path: Path | str | None = None) -> WindowState:
    state, sock = connect(path)
    if sock is not None:
        sock.close()
    return state


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 65536))
        if not chunk:
            raise ConnectionError("the voicegui window closed the connection without a reply")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def exchange(sock: socket.socket, request: Request) -> Reply:
    """Send `request` on a connected socket and read the reply (OSError, ProtocolError on failure)."""
    with sock:
        sock.sendall(encode_request(request))
        length = body_length(_read_exactly(sock, HEADER.size))
        return decode_reply(_read_exactly(sock, length))
