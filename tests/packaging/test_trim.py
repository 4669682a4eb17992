"""The bundle's trim step (packaging/pyinstaller/trim.py) on its own, without building the bundle.

The smoke test (tests/e2e/test_bundle_smoke.py) shows the trimmed bundle still works; these show the parts that
a working bundle cannot: that a stubbed library answers the calls FFmpeg makes while building its codec table and
ends the process with a sentence on any other call (built here from real shared libraries made with binutils),
that ICU's common data keeps its layout when items are dropped, and that pruning drops only what dropped files
alone needed.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TRIM_PATH = Path(__file__).resolve().parents[2] / "packaging" / "pyinstaller" / "trim.py"
_spec = importlib.util.spec_from_file_location("voicegui_bundle_trim", TRIM_PATH)
assert _spec is not None and _spec.loader is not None
trim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(trim)

needs_binutils = pytest.mark.skipif(not all(shutil.which(tool) for tool in ("as", "ld", "readelf")),
                                    reason="needs binutils (as, ld, readelf), as `make dist` does")


def _functions(*functions: tuple[str, str]) -> str:
    """Assembler text for global functions, each (name, its instructions before `ret`)."""
    return "".join(f"""
        .globl {name}
        .type {name}, @function
        {name}: {body}
        ret
    """ for name, body in functions)


@pytest.fixture
def real_dir(tmp_path: Path) -> Path:
    """Where a test links the libraries that stand for the real ones."""
    path = tmp_path / "real"
    path.mkdir()
    return path


def _link(tmp_path: Path, name: str, asm: str, *libs: Path, soname: str | None = None) -> Path:
    source = tmp_path / f"{name}.s"
    source.write_text(asm)
    obj = tmp_path / f"{name}.o"
    subprocess.run(["as", "--64", "-o", str(obj), str(source)], check=True)
    out = tmp_path / name
    subprocess.run(["ld", "-shared", "-soname", soname or name, "-o", str(out), str(obj), *map(str, libs)],
                   check=True)
    return out


@needs_binutils
def test_a_stub_answers_the_codec_table_calls_and_ends_the_process_on_any_other(tmp_path: Path,
                                                                              real_dir: Path) -> None:
    real = _link(real_dir, "libx265-0123abcd.so.216", ".text" + _functions(
        ("x265_api_get_216", "mov $42, %eax"), ("x265_encoder_encode", "mov $1, %eax"), ("x265_unused", "")) + """
        .data
        .globl x265_max_bit_depth
        .type x265_max_bit_depth, @object
        .size x265_max_bit_depth, 4
        x265_max_bit_depth: .long 12
    """)
    # What libavcodec is to the real library: it calls two functions and reads one variable.
    user = _link(real_dir, "libuser.so", ".text" + _functions(
        ("use", "call x265_api_get_216@PLT; call x265_encoder_encode@PLT; "
                "mov x265_max_bit_depth@GOTPCREL(%rip), %rax")), real)
    stub = trim.build_stub(str(real), [str(user)], tmp_path / "stubs")

    assert trim.needed(str(user)) == {"libx265-0123abcd.so.216"}
    symbols, soname = trim._dynamic_symbols(str(stub))
    assert soname == "libx265-0123abcd.so.216"
    assert {name for name, *_rest in symbols} == {"x265_api_get_216", "x265_encoder_encode", "x265_max_bit_depth"}
    call = "import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); print(getattr(lib, sys.argv[2])())"
    benign = subprocess.run([sys.executable, "-c", call, str(stub), "x265_api_get_216"], capture_output=True,
                            text=True, timeout=60)
    assert benign.returncode == 0 and benign.stdout.strip() == "0", benign
    other = subprocess.run([sys.executable, "-c", call, str(stub), "x265_encoder_encode"], capture_output=True,
                           text=True, timeout=60)
    assert other.returncode == trim.STUB_EXIT_STATUS, other
    assert other.stdout == ""
    assert other.stderr.count("\n") == 1 and "libx265-0123abcd.so.216" in other.stderr
    assert "x265_encoder_encode" in other.stderr and "trim.py" in other.stderr, other.stderr


@needs_binutils
def test_a_libswscale_stub_gives_pyav_the_real_version_answers_and_is_built_for_pyavs_own_modules(
        tmp_path: Path, real_dir: Path) -> None:
    # PyAV's av/_core module (an EXTENSION, not a BINARY) asks libswscale for its version, configuration and
    # licence when av is imported; the stub must define what the modules import and answer as the real one does.
    real = _link(real_dir, "libswscale-0123abcd.so.9.5.102", """
        .section .rodata
        licence: .asciz "LGPL version 3 or later"
        config: .asciz "--enable-shared \\"quoted\\""
        .text""" + _functions(("swscale_version", "mov $591206, %eax"), ("swscale_license", "lea licence(%rip), %rax"),
                              ("swscale_configuration", "lea config(%rip), %rax"), ("sws_scale", "mov $1, %eax")))
    core = _link(real_dir, "_core.abi3.so", ".text" + _functions(
        ("use", "call swscale_version@PLT; call swscale_license@PLT; call swscale_configuration@PLT; "
                "call sws_scale@PLT")), real)
    toc = [("av.libs/libswscale-0123abcd.so.9.5.102", str(real), "BINARY"),
           ("av/_core.abi3.so", str(core), "EXTENSION")]

    stubbed_toc, replaced = trim.stub_libraries(toc, tmp_path / "stubs")

    assert replaced == [toc[0]] and stubbed_toc[1] == toc[1]
    stub = stubbed_toc[0][1]
    assert {name for name, *_rest in trim._dynamic_symbols(stub)[0]} == {
        "swscale_version", "swscale_license", "swscale_configuration", "sws_scale"}
    ask = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); lib.swscale_version.restype = ctypes.c_uint; "
           "lib.swscale_license.restype = lib.swscale_configuration.restype = ctypes.c_char_p; "
           "print(repr((lib.swscale_version(), lib.swscale_license(), lib.swscale_configuration())))")
    answers = [subprocess.run([sys.executable, "-c", ask, path], capture_output=True, text=True, timeout=60)
               for path in (str(real), stub)]
    assert answers[0].returncode == 0 and answers[1].stdout == answers[0].stdout, answers
    assert "591206" in answers[1].stdout
    call = "import ctypes, sys; ctypes.CDLL(sys.argv[1]).sws_scale()"
    scale = subprocess.run([sys.executable, "-c", call, stub], capture_output=True, text=True, timeout=60)
    assert scale.returncode == trim.STUB_EXIT_STATUS and "sws_scale" in scale.stderr, scale


@needs_binutils
def test_kerberos_is_stubbed_under_a_name_of_its_own_and_only_qt_networks_copy_names_it(tmp_path: Path,
                                                                                       real_dir: Path) -> None:
    # Under its real soname the stub would also serve the system's own libraries that need the real GSSAPI.
    real = _link(real_dir, "libgssapi_krb5.so.2", ".text" + _functions(("gss_init_sec_context", "xor %eax, %eax")))
    network = _link(real_dir, "libQt6Network.so.6",
                    ".text" + _functions(("negotiate", "call gss_init_sec_context@PLT")), real)
    toc = [("libgssapi_krb5.so.2", str(real), "BINARY"),
           ("PySide6/Qt/lib/libQt6Network.so.6", str(network), "BINARY")]

    new_toc, replaced = trim.stub_renamed_libraries(toc, tmp_path / "renamed")

    assert replaced == [toc[0]]
    (stub_name, stub, _kind), (name, patched, _kind2) = new_toc
    assert stub_name == trim.RENAMED_STUBS["libgssapi_krb5.so.2"] == Path(stub).name
    assert trim.soname_of(stub) == stub_name
    assert name == toc[1][0] and patched != str(network)
    assert trim.needed(patched) == {stub_name} and trim.needed(str(network)) == {"libgssapi_krb5.so.2"}
    # The patched copy loads with the stub beside it and without any libgssapi_krb5.so.2; a GSSAPI call ends
    # the process with the sentence.
    call = "import ctypes, sys; ctypes.CDLL(sys.argv[1]).negotiate()"
    res = subprocess.run([sys.executable, "-c", call, patched], capture_output=True, text=True, timeout=60,
                         env={"LD_LIBRARY_PATH": str(Path(stub).parent), "PATH": "/usr/bin:/bin"})
    assert res.returncode == trim.STUB_EXIT_STATUS, res
    assert "libgssapi_krb5.so.2" in res.stderr and "gss_init_sec_context" in res.stderr, res.stderr
    assert "no HTTP requests through Qt" in res.stderr, res.stderr


def test_a_needed_name_is_renamed_only_in_place() -> None:
    with pytest.raises(SystemExit, match="as long as"):
        trim.rename_needed("/bin/true", "libgssapi_krb5.so.2", "libshort.so", Path("/nonexistent"))


def _common_data(items: dict[str, bytes]) -> bytes:
    """ICU common data as ICU's tools lay it out: header, table of contents, names, 16-byte aligned items."""
    header = bytearray(32)
    header[0:4] = (32).to_bytes(2, "little") + b"\xda\x27"
    header[12:16] = b"CmnD"
    names = b"".join(name.encode() + b"\0" for name in items)
    toc_size = 4 + 8 * len(items)
    name_at, data_at, body = [], [], bytearray()
    at = toc_size
    for name in items:
        name_at.append(at)
        at += len(name) + 1
    at = toc_size + len(names)
    for data in items.values():
        pad = -(32 + at) % 16
        body += b"\0" * pad
        at += pad
        data_at.append(at)
        body += data
        at += len(data)
    toc = len(items).to_bytes(4, "little") + b"".join(
        n.to_bytes(4, "little") + d.to_bytes(4, "little") for n, d in zip(name_at, data_at, strict=True))
    return bytes(header) + toc + names + bytes(body)


def test_icu_common_data_keeps_its_layout_when_items_are_dropped() -> None:
    items = {"icudt73l/brkitr/cjdict.dict": b"D" * 37, "icudt73l/coll/de.res": b"d" * 5,
             "icudt73l/coll/root.res": b"R" * 21, "icudt73l/ibm-1390.cnv": b"C" * 9, "icudt73l/root.res": b"r" * 3}
    blob = _common_data(items)
    assert trim.trim_icu_common_data(blob, lambda name: True) == (blob, [])

    trimmed, dropped = trim.trim_icu_common_data(blob, trim.keep_icu_item)

    assert dropped == ["icudt73l/brkitr/cjdict.dict", "icudt73l/coll/de.res", "icudt73l/ibm-1390.cnv"]
    assert trimmed == _common_data({name: data for name, data in items.items() if name not in dropped})


def test_icu_common_data_that_is_not_refuses_with_a_sentence() -> None:
    with pytest.raises(SystemExit, match="CmnD"):
        trim.trim_icu_common_data(b"\x20\x00\xda\x27" + bytes(28), trim.keep_icu_item)


@pytest.mark.parametrize(("name", "kept"), [
    ("icudt73l/coll/root.res", True), ("icudt73l/coll/ucadata.icu", True), ("icudt73l/coll/de.res", False),
    ("icudt73l/res_index.res", True), ("icudt73l/en.res", True), ("icudt73l/zh_Hant.res", False),
    ("icudt73l/likelySubtags.res", True), ("icudt73l/cnvalias.icu", True), ("icudt73l/gb18030.cnv", False),
    ("icudt73l/brkitr/word.brk", True), ("icudt73l/brkitr/cjdict.dict", False), ("icudt73l/zone/en.res", True),
    ("icudt73l/lang/en.res", False), ("icudt73l/translit/root.res", False), ("icudt73l/unames.icu", False),
])
def test_icu_items_kept(name: str, kept: bool) -> None:
    assert trim.keep_icu_item(name) is kept


@pytest.mark.parametrize(("name", "kept"), [
    ("PySide6/Qt/plugins/platforms/libqxcb.so", True), ("PySide6/Qt/plugins/platforms/libqoffscreen.so", True),
    ("PySide6/Qt/plugins/platforms/libqwayland.so", True), ("PySide6/Qt/plugins/platforms/libqvnc.so", False),
    ("PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so", True),
    ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", False), ("PySide6/Qt/plugins/generic/libqevdevmouseplugin.so",
                                                               False),
    ("PySide6/Qt/plugins/imageformats/libqsvg.so", True), ("PySide6/Qt/plugins/imageformats/libqjpeg.so", False),
    ("PySide6/Qt/translations/qtbase_de.qm", False), ("PySide6/QtCore.abi3.so", True), ("libQt6Core.so.6", True),
])
def test_qt_files_kept(name: str, kept: bool) -> None:
    assert trim.keep_qt_file(name) is kept


@pytest.mark.parametrize(("name", "kept"), [
    ("pyqtgraph/icons/peegee/peegee_128px.png", False), ("pyqtgraph/icons/auto.png", True),
    ("pyqtgraph/colors/maps/CET-C1.csv", False), ("pyqtgraph/colors/palette.py", True),
    ("numpy-2.4.6.dist-info/RECORD", False), ("numpy-2.4.6.dist-info/METADATA", True),
    ("keyring-25.7.0.dist-info/entry_points.txt", True), ("numpy-2.4.6.dist-info/licenses/LICENSE.txt", True),
    ("hibari/assets/hibari.onnx", True), ("resources/voicegui.svg", True),
])
def test_data_files_kept(name: str, kept: bool) -> None:
    assert trim.keep_data_file(name) is kept


def test_pruning_drops_only_what_dropped_files_alone_needed() -> None:
    needs = {"gtk-theme.so": {"libpango.so", "libglib.so"}, "libpango.so": {"libharfbuzz.so"},
             "libharfbuzz.so": set(), "libglib.so": set(), "QtCore.so": {"libglib.so"},
             "libportaudio.so": set(), "libjack.so": set()}
    kept = [(name, name, "BINARY") for name in ("QtCore.so", "libpango.so", "libharfbuzz.so", "libglib.so",
                                                "libportaudio.so")]

    toc, removed = trim.prune_orphans(kept, [("gtk-theme.so", "gtk-theme.so", "BINARY")],
                                      needs=lambda src: frozenset(needs[src]))

    # pango only the theme needed, harfbuzz only pango; glib QtCore still needs; PortAudio (dlopen'ed: nobody
    # names it) is no candidate at all.
    assert removed == ["libpango.so", "libharfbuzz.so"]
    assert [name for name, _src, _kind in toc] == ["QtCore.so", "libglib.so", "libportaudio.so"]
