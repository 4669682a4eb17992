"""`pip install .` gives a wheel that carries the desktop resources inside the package, and the installed
package runs as `voicegui` and `python -m voicegui`, finds its icon, and installs its menu entry.

The wheel is built once per run into a temporary folder (`pip wheel . --no-deps`, the same build as
`pip install .`) and installed with --no-deps into another (`pip install --target`); the dependencies come
from the test's own environment. PYTHONPATH puts that folder first, so `voicegui` is imported from the wheel,
not from the source tree (each test checks which copy it ran).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SIZES = ("16x16", "22x22", "24x24", "32x32", "48x48", "64x64", "128x128", "256x256", "512x512")
RESOURCES = ["voicegui/resources/voicegui.svg", "voicegui/resources/voicegui.desktop",
             "voicegui/resources/io.github.voicegui.metainfo.xml"]
RESOURCES += [f"voicegui/resources/icons/{size}/voicegui.png" for size in SIZES]
PIP_TIMEOUT_S = 300


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=PIP_TIMEOUT_S)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    res = pip("wheel", ".", "--no-deps", "-w", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    wheels = list(out.glob("voicegui-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    res = pip("install", "--no-deps", "--no-compile", "--target", str(target), str(wheel))
    assert res.returncode == 0, res.stdout + res.stderr
    return target


def run_installed(target: Path, *cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    run_env = dict(env or os.environ)
    run_env["PYTHONPATH"] = str(target)
    # Run from a folder without the source tree, so nothing is imported from the checkout by accident.
    return subprocess.run(list(cmd), cwd=target.parent, env=run_env, capture_output=True, text=True,
                          timeout=120)


def test_wheel_carries_the_resources(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in RESOURCES if name not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    # The screenshot is for software centres (referenced by URL from the metainfo), not the package.
    assert not any("screenshots" in name for name in names)


def test_wheel_carries_every_module_of_the_source_tree(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "voicegui").rglob("*.py")
               if "__pycache__" not in p.parts and "resources" not in p.parts}
    assert sources - names == set()


def test_installed_script_and_module_run_from_the_wheel(installed: Path) -> None:
    script = installed / "bin" / "voicegui"
    assert script.is_file(), "the wheel installed no `voicegui` script"
    for cmd in ([str(script), "--help"], [sys.executable, "-m", "voicegui", "--help"]):
        res = run_installed(installed, *cmd)
        assert res.returncode == 0, f"{cmd}: {res.stderr}"
        assert "usage: voicegui" in res.stdout and "speak" in res.stdout
    res = run_installed(installed, sys.executable, "-c", "import voicegui; print(voicegui.__file__)")
    assert Path(res.stdout.strip()).parent == installed / "voicegui", res.stdout + res.stderr


def test_installed_package_finds_its_icon(installed: Path) -> None:
    res = run_installed(installed, sys.executable, "-c",
                        "from voicegui.ui.app import icon_path; print(icon_path())")
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.strip()) == installed / "voicegui" / "resources" / "voicegui.svg"


def test_installed_voicegui_installs_and_uninstalls_its_menu_entry(installed: Path, tmp_path: Path) -> None:
    script = installed / "bin" / "voicegui"
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"))
    res = run_installed(installed, str(script), "--install-desktop", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    entry = tmp_path / "data" / "applications" / "voicegui.desktop"
    values = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line)
    # Exec runs the installed script, which this pip install put in <target>/bin.
    assert values["Exec"] == str(script)
    for size in SIZES:
        assert (tmp_path / "data" / "icons" / "hicolor" / size / "apps" / "voicegui.png").is_file()
    res = run_installed(installed, str(script), "--uninstall-desktop", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [p for p in (tmp_path / "data").rglob("*") if p.is_file()] == []
