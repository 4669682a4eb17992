"""voicegui.cli.desktop_install: the menu entry and icons go into a (temporary) XDG_DATA_HOME, point at the
voicegui that installed them, validate, and uninstall removes exactly what install wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from voicegui.cli import desktop_install as di

REPO = Path(__file__).resolve().parents[2]
SIZES = ("16x16", "22x22", "24x24", "32x32", "48x48", "64x64", "128x128", "256x256", "512x512")


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def desktop_values(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_install_writes_entry_and_every_icon_size(tmp_path: Path) -> None:
    cmd = ["/opt/voicegui/bin/voicegui"]
    written = di.install_desktop(tmp_path, command=cmd)
    entry = tmp_path / "applications" / "voicegui.desktop"
    icons = tmp_path / "icons" / "hicolor"
    expected = {entry, icons / "scalable" / "apps" / "voicegui.svg"}
    expected |= {icons / size / "apps" / "voicegui.png" for size in SIZES}
    assert set(written) == expected
    assert all(p.stat().st_size > 0 for p in expected)
    values = desktop_values(entry)
    assert values["Exec"] == "/opt/voicegui/bin/voicegui"
    assert values["TryExec"] == "/opt/voicegui/bin/voicegui"
    assert values["Icon"] == "voicegui" and values["Type"] == "Application"
    assert (icons / "48x48" / "apps" / "voicegui.png").read_bytes() == \
        (REPO / "resources" / "icons" / "48x48" / "voicegui.png").read_bytes()


def test_default_command_is_the_running_voicegui(tmp_path: Path) -> None:
    di.install_desktop(tmp_path)
    exec_value = desktop_values(tmp_path / "applications" / "voicegui.desktop")["Exec"]
    program = exec_value.split()[0].strip('"')
    assert Path(program).is_absolute() and os.access(program, os.X_OK)
    # The test runs in the project's virtualenv, whose bin/ has the installed `voicegui` script.
    assert program == str(Path(sys.executable).absolute().parent / "voicegui")


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate not installed (Debian desktop-file-utils)")
@pytest.mark.parametrize("command", [
    ["/usr/bin/voicegui"],
    ["/home/a user/my venv/bin/python", "-m", "voicegui"],  # spaces must be quoted
    ['/tmp/odd"dir$/100%/voicegui'],                         # quote, dollar and percent escaped
])
def test_installed_entry_validates(tmp_path: Path, command: list[str]) -> None:
    di.install_desktop(tmp_path, command=command)
    entry = tmp_path / "applications" / "voicegui.desktop"
    res = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert res.returncode == 0 and "error" not in res.stdout.lower(), res.stdout + res.stderr


def test_exec_quoting_round_trips() -> None:
    # The spec: string-escape (\\ -> \) first, then quoted args with \" \` \$ \\ inside double quotes.
    assert di.exec_line(["/usr/bin/voicegui"]) == "/usr/bin/voicegui"
    assert di.exec_line(["/a b/voicegui", "-m"]) == '"/a b/voicegui" -m'
    assert di.exec_line(['/x"$/50%/v']) == '"/x\\\\"\\\\$/50%%/v"'


def test_uninstall_removes_exactly_what_install_wrote(tmp_path: Path) -> None:
    # Someone else's files in the same folders must survive.
    others = [tmp_path / "applications" / "other.desktop",
              tmp_path / "icons" / "hicolor" / "48x48" / "apps" / "other.png",
              tmp_path / "voicegui" / "history.json"]
    for path in others:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not ours")
    before = files_under(tmp_path)
    written = di.install_desktop(tmp_path, command=["/usr/bin/voicegui"])
    assert files_under(tmp_path) == before | set(written) | {tmp_path / di.MANIFEST}
    removed = di.uninstall_desktop(tmp_path)
    assert set(removed) == set(written)
    assert files_under(tmp_path) == before
    assert all(p.read_text() == "not ours" for p in others)


def test_reinstall_then_uninstall_leaves_nothing(tmp_path: Path) -> None:
    di.install_desktop(tmp_path, command=["/usr/bin/voicegui"])
    di.install_desktop(tmp_path, command=["/opt/other/voicegui"])
    assert desktop_values(tmp_path / "applications" / "voicegui.desktop")["Exec"] == "/opt/other/voicegui"
    di.uninstall_desktop(tmp_path)
    assert files_under(tmp_path) == set()


def test_uninstall_without_install_removes_nothing(tmp_path: Path) -> None:
    stray = tmp_path / "applications" / "voicegui.desktop"  # not written by us: no manifest names it
    stray.parent.mkdir(parents=True)
    stray.write_text("[Desktop Entry]\n")
    assert di.uninstall_desktop(tmp_path) == []
    assert stray.exists()


def test_manifest_cannot_point_outside_data_home(tmp_path: Path) -> None:
    home, victim = tmp_path / "home", tmp_path / "victim.txt"
    victim.write_text("keep me")
    (home / "voicegui").mkdir(parents=True)
    (home / di.MANIFEST).write_text('{"files": ["../victim.txt", "/etc/hostname"]}')
    assert di.uninstall_desktop(home) == []
    assert victim.read_text() == "keep me"


def test_data_home_defaults_to_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    written = di.install_desktop(command=["/usr/bin/voicegui"])
    assert all((tmp_path / "xdg") in p.parents for p in written)
    assert set(di.uninstall_desktop()) == set(written)
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # invalid per the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert di.default_data_home() == tmp_path / "home" / ".local" / "share"


def test_run_desktop_command_reports_failure_as_exit_code(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    assert di.run_desktop_command(data_home=blocked) == di.EXIT_FAILED
    assert di.run_desktop_command(data_home=tmp_path / "ok") == di.EXIT_OK
    assert di.run_desktop_command(uninstall=True, data_home=tmp_path / "ok") == di.EXIT_OK
    assert files_under(tmp_path / "ok") == set()


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstreamcli not installed (Debian appstream)")
def test_shipped_metainfo_validates_and_names_the_desktop_file() -> None:
    metainfo = REPO / "resources" / "io.github.voicegui.metainfo.xml"
    res = subprocess.run(["appstreamcli", "validate", "--no-net", str(metainfo)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "<launchable type=\"desktop-id\">voicegui.desktop</launchable>" in metainfo.read_text()
    # The screenshot the metainfo points at is the one committed in resources/screenshots.
    assert "resources/screenshots/main-window.png" in metainfo.read_text()
    assert (REPO / "resources" / "screenshots" / "main-window.png").is_file()
