"""`voicegui --install-desktop` / `--uninstall-desktop`: put voicegui in this user's application menu, or take it out.

install_desktop() copies the shipped voicegui.desktop into $XDG_DATA_HOME/applications with Exec= (and
TryExec=) rewritten to the voicegui that is running now (the bundle's executable, the virtualenv's script, or
`python -m voicegui`), and the icons into $XDG_DATA_HOME/icons/hicolor/SIZExSIZE/apps and .../scalable/apps.
It records every file it wrote in a manifest ($XDG_DATA_HOME/voicegui/desktop-install.json), so that
uninstall_desktop() removes exactly those files (and the manifest), never a file it did not write, and keeps
working after an upgrade changed the icons. Desktops watch these folders, so no cache needs rebuilding (and
writing icon-theme.cache or mimeinfo.cache would leave files behind that uninstall could not own).

Where the resources are (same order as voicegui/ui/app.py): the PyInstaller folder (sys._MEIPASS/resources),
the installed package (voicegui/resources, see pyproject's package-data), the source tree's resources/.

Threads: plain blocking file I/O on the caller's thread (the CLI's main thread); no Qt, no audio.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from voicegui.cli.args import EXIT_FAILED, EXIT_OK
from voicegui.files import atomic_write

log = logging.getLogger(__name__)

APP_ID = "voicegui"
DESKTOP_FILE = "voicegui.desktop"
SVG_ICON = "voicegui.svg"
PNG_ICON = "voicegui.png"
MANIFEST = Path(APP_ID) / "desktop-install.json"

# Characters that force quoting of an Exec argument (Desktop Entry spec, "The Exec key").
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def resources_dir() -> Path:
    """The folder holding voicegui.svg, voicegui.desktop and icons/; FileNotFoundError if none has them."""
    candidates: list[Path] = []
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        candidates.append(Path(frozen_root) / "resources")
    try:
        candidates.append(Path(str(resources.files("voicegui") / "resources")))
    except (ModuleNotFoundError, TypeError):
        pass
    candidates.append(Path(__file__).resolve().parents[1] / "resources")
    for path in candidates:
        if (path / DESKTOP_FILE).is_file() and (path / SVG_ICON).is_file():
            return path
    raise FileNotFoundError("voicegui's desktop resources are not installed (looked in: "
                            + ", ".join(str(p) for p in candidates) + ")")


def default_data_home() -> Path:
    """$XDG_DATA_HOME if set to an absolute path (as the XDG spec requires), else ~/.local/share."""
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / ".local" / "share"


def launcher_command() -> list[str]:
    """The command that starts this voicegui: the frozen executable, the `voicegui` script now running, the
    one installed beside this interpreter (a virtualenv's bin/), the one on PATH, or python -m voicegui."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    # Not resolved: /usr/local/bin/voicegui may be a symlink into a pipx venv, and the link is the stable name.
    running = Path(sys.argv[0]).absolute() if sys.argv and sys.argv[0] else None
    if running is not None and running.name == APP_ID and running.is_file() and os.access(running, os.X_OK):
        return [str(running)]
    # Not resolved: a virtualenv's python is a symlink to the system one, whose bin/ has no voicegui.
    beside = Path(sys.executable).absolute().parent / APP_ID
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    on_path = shutil.which(APP_ID)
    if on_path:
        return [str(Path(on_path).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", APP_ID]


def exec_line(command: list[str]) -> str:
    """`command` as a desktop entry Exec value: reserved characters quoted per the spec, then escaped
    once more as a desktop-file string value (backslashes double)."""
    parts = []
    for arg in command:
        if any(c in _EXEC_RESERVED for c in arg):
            arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
        parts.append(arg.replace("%", "%%"))
    return " ".join(parts).replace("\\", "\\\\")


def desktop_entry(template: str, command: list[str]) -> str:
    """The shipped .desktop text with Exec= and TryExec= pointing at `command`."""
    lines = []
    for line in template.splitlines():
        if line.startswith(("Exec=", "TryExec=")):
            continue
        lines.append(line)
        if line.startswith("Type="):
            # TryExec hides the menu entry if that voicegui is removed (e.g. its virtualenv deleted).
            lines.append("TryExec=" + exec_line(command[:1]))
            lines.append("Exec=" + exec_line(command))
    return "\n".join(lines) + "\n"


def _read_manifest(data_home: Path) -> list[Path]:
    path = data_home / MANIFEST
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        raise OSError(f"{path} is not a voicegui install manifest: {exc}") from exc
    # Only paths under data_home: a tampered manifest must not make uninstall delete files elsewhere.
    files = [data_home / name for name in names if isinstance(name, str)]
    return [p for p in files if data_home.resolve() in p.resolve().parents]


def install_desktop(data_home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Install the menu entry and icons under `data_home` (default: $XDG_DATA_HOME, else ~/.local/share).

    `command`: what Exec= runs (default: launcher_command()). Returns the files written. Raises
    FileNotFoundError if the resources are missing, OSError if a file cannot be written.
    """
    home = data_home if data_home is not None else default_data_home()
    src = resources_dir()
    command = command or launcher_command()
    plan: list[tuple[Path, bytes]] = []
    template = (src / DESKTOP_FILE).read_text(encoding="utf-8")
    plan.append((home / "applications" / DESKTOP_FILE, desktop_entry(template, command).encode("utf-8")))
    icons = home / "icons" / "hicolor"
    plan.append((icons / "scalable" / "apps" / SVG_ICON, (src / SVG_ICON).read_bytes()))
    for png in sorted((src / "icons").glob(f"*/{PNG_ICON}")):
        plan.append((icons / png.parent.name / "apps" / PNG_ICON, png.read_bytes()))

    # Keep what an earlier install wrote on the list, so an uninstall after a reinstall still finds it.
    written = [p for p in _read_manifest(home) if p.exists()]
    for path, data in plan:
        atomic_write(path, data)  # a half-written .desktop file would show up broken in the menu
        if path not in written:
            written.append(path)
        log.info("installed %s", path)
    manifest = {"files": [str(p.relative_to(home)) for p in written], "exec": command}
    atomic_write(home / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return [path for path, _data in plan]


def uninstall_desktop(data_home: Path | None = None) -> list[Path]:
    """Remove the files install_desktop() wrote under `data_home`, and its manifest; returns what was
    removed (empty if nothing was installed). Folders are left: they may hold other programs' files."""
    home = data_home if data_home is not None else default_data_home()
    removed: list[Path] = []
    for path in _read_manifest(home):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
        log.info("removed %s", path)
    manifest = home / MANIFEST
    manifest.unlink(missing_ok=True)
    try:
        manifest.parent.rmdir()  # only if empty: the app's own data may live there
    except OSError:
        pass
    return removed


def run_desktop_command(uninstall: bool = False, data_home: Path | None = None) -> int:
    """CLI glue for --install-desktop / --uninstall-desktop: one line per file (INFO), one line on failure."""
    try:
        if uninstall:
            removed = uninstall_desktop(data_home)
            if not removed:
                log.warning("nothing to remove: voicegui's menu entry was not installed for this user")
        else:
            install_desktop(data_home)
    except OSError as exc:  # FileNotFoundError (resources) and permission errors alike
        log.error("voicegui: %s", exc)
        return EXIT_FAILED
    return EXIT_OK
