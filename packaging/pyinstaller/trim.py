"""What voicegui.spec leaves out of PyInstaller's collection, and the stubs it puts in place of libraries never called.

Build-time only: voicegui.spec imports this module; the app never does. Its jobs, each a filter over the
Analysis's TOCs (lists of (name in the bundle, source path, kind)), so nothing is deleted after the build:

- `keep_data_file`: no package data that nothing in voicegui reads (pyqtgraph's logo and named colour maps, the
  dist-info RECORDs).
- `keep_qt_file`: of Qt's plugins, only what this app loads (the X11, Wayland and offscreen platforms with their
  input-method, GL and Wayland shell/decoration helpers, the SVG icon engine and image format for the icons, the
  desktop portal's file dialogs); none of Qt's translations (the window is English only).
- `SYSTEM_LIBRARIES`: shared libraries that the Debian packages the README requires on the target already
  provide (GLib, D-Bus, fontconfig/FreeType, libX11/libxcb and the xcb helpers, xkbcommon): one copy, the
  system's, matching the desktop it runs on.
- `strip_binaries`: symbol tables and debug info off (libpython alone drops from 22 to 5.5 MB), where safe.
- `stub_libraries`: PyAV's wheel links libavcodec against video codec libraries (x265, x264, SVT-AV1, libvpx, dav1d,
  WebP, VPL, opencore-amr), libavformat against GnuTLS (network protocols), libavdevice against ALSA and X11
  capture, and every PyAV module against libswscale (video scaling): ~44 MB voicegui never uses, since it only
  encodes and decodes audio in memory. The dynamic loader still wants each file, so each is replaced by a stub
  built here with binutils (as, ld): same soname and symbol versions, and every symbol the bundle's files take
  from the library defined. These copies' sonames carry auditwheel's tag: a stub under a system library's soname
  would also stand in for it for the system's own libraries loaded into the process (the desktop's FreeType
  needs the real Brotli, say). FFmpeg asks a few of them for their capabilities while it builds its codec table
  (`BENIGN`): those return 0 (no capability, no API). PyAV asks libswscale for its version, build configuration
  and licence when it is imported (av.library_versions): `ANSWERED` functions return what the real library
  answers, read from it at build time. Any other call writes one line naming the library and function to stderr
  and ends the process with status 70: never a silent wrong answer.
- `stub_renamed_libraries`: the same for system libraries that only Qt Network's HTTP client needs (Kerberos,
  `RENAMED_STUBS`), under a soname of their own that the files needing them are patched to name.

`prune_orphans` then drops every library that only dropped or stubbed files needed, transitively.

Threads: none of its own; it runs once, in the PyInstaller process that executes the spec.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

Toc = list[tuple[str, str, str]]

QT_PREFIX = "PySide6/Qt/"
QT_PLUGINS_KEPT = {
    "platforms": {"libqxcb.so", "libqwayland.so", "libqoffscreen.so", "libqminimal.so"},
    "platforminputcontexts": None,  # None: the whole folder (compose keys, IBus)
    "xcbglintegrations": None,
    "wayland-shell-integration": {"libxdg-shell.so"},
    "wayland-decoration-client": None,
    "wayland-graphics-integration-client": {"libqt-plugin-wayland-egl.so", "libshm-emulation-server.so"},
    "iconengines": {"libqsvgicon.so"},
    "imageformats": {"libqsvg.so"},
    "platformthemes": {"libqxdgdesktopportal.so"},
}

# Sonames the Debian packages the README requires on the target provide (by package, with the libraries those
# packages depend on): shipping a second, older copy of them only risks a clash with the desktop's own.
SYSTEM_LIBRARIES = {
    "libglib2.0-0": ("libglib-2.0.so.0", "libgobject-2.0.so.0", "libgio-2.0.so.0", "libgmodule-2.0.so.0",
                     "libgthread-2.0.so.0"),
    "libdbus-1-3": ("libdbus-1.so.3",),
    "libfontconfig1": ("libfontconfig.so.1", "libfreetype.so.6"),
    "libxkbcommon0, libxkbcommon-x11-0": ("libxkbcommon.so.0", "libxkbcommon-x11.so.0", "libxcb-xkb.so.1"),
    "libgl1": ("libX11.so.6", "libxcb.so.1"),
    "libxcb-cursor0, -icccm4, -image0, -keysyms1, -render-util0, -shape0": (
        "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-image.so.0", "libxcb-keysyms.so.1",
        "libxcb-render-util.so.0", "libxcb-shape.so.0", "libxcb-render.so.0", "libxcb-shm.so.0",
        "libxcb-util.so.1"),
}
_SYSTEM_SONAMES = frozenset(name for names in SYSTEM_LIBRARIES.values() for name in names)

# PyAV's vendored copies (auditwheel's 8-hex-digit tag) of libraries only video codecs and TLS need.
# The last group serves only libavdevice's capture and playback devices (ALSA, X11 grabbing, KMS) and libavutil's
# DRM hardware frames: voicegui plays through PortAudio, which brings its own system libasound.
# libswscale: video scaling and pixel format conversion (PyAV's VideoFrame.reformat, FFmpeg's scale filters).
STUBBED = re.compile(
    r"^(libx265|libx264|libSvtAv1Enc|libvpx|libdav1d|libwebp|libwebpmux|libsharpyuv|libvpl|libopencore-amrnb"
    r"|libopencore-amrwb|libgnutls"
    r"|libasound|libxcb|libxcb-shape|libxcb-shm|libxcb-xfixes|libXau|libdrm|libswscale)-[0-9a-f]{8}\.so(\.\d+)*$")

# Called while libavcodec builds its codec table (init_static_data of its libx265 and libvpx-vp9 encoders), in
# every process that decodes or encodes anything: they must answer "nothing" (a NULL API, no capabilities)
# instead of failing. Found by running the bundle: any other call ends it, naming the function.
# (x265's entry point carries its build number: x265_api_get_216.)
BENIGN = re.compile(r"^(x265_api_get_\d+|vpx_codec_vp9_cx|vpx_codec_get_caps)$")

# Called when PyAV is imported (av/_core: av.library_versions), in every process that imports it: each returns
# the real library's answer, an unsigned int ("uint") or a constant C string ("str").
ANSWERED = {"swscale_version": "uint", "swscale_configuration": "str", "swscale_license": "str"}

STUB_EXIT_STATUS = 70


def keep_qt_file(name: str) -> bool:
    """False for the Qt plugins and translations this app never loads (module docstring)."""
    if not name.startswith(QT_PREFIX):
        return True
    rest = name[len(QT_PREFIX):].split("/")
    if rest[0] == "translations":
        return False
    if rest[0] != "plugins" or len(rest) < 3:
        return True
    if rest[1] not in QT_PLUGINS_KEPT:
        return False
    kept = QT_PLUGINS_KEPT[rest[1]]
    return kept is None or rest[-1] in kept


# Package data nothing in voicegui reads: pyqtgraph's logo (1 MB of PNGs, only the window icon of pyqtgraph.mkQApp(),
# which voicegui never calls); pyqtgraph's named colour maps (0.4 MB of CSVs, with the licences of that data), read
# only by pyqtgraph.colormap.get(name), which voicegui's plots never call (they draw lines and text, no images);
# and each package's RECORD (its installed files and hashes, for pip: importlib.metadata's version and entry
# points come from METADATA and entry_points.txt, which stay, as do the licences).
DATA_DROPPED_PREFIXES = ("pyqtgraph/icons/peegee/", "pyqtgraph/colors/maps/")


def keep_data_file(name: str) -> bool:
    """False for the package data above (DATA_DROPPED_PREFIXES and dist-info RECORDs), True for the rest."""
    parts = name.split("/")
    if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "RECORD":
        return False
    return not name.startswith(DATA_DROPPED_PREFIXES)


def is_system_library(name: str) -> bool:
    """True for a top-level library SYSTEM_LIBRARIES names (a wheel's own tagged copy, libxcb-5ddf6756.so, is not)."""
    return name in _SYSTEM_SONAMES


@functools.cache
def needed(path: str) -> frozenset[str]:
    """The DT_NEEDED sonames of one ELF file (empty for a file that is not one)."""
    res = subprocess.run(["readelf", "-d", "-W", path], capture_output=True, text=True, check=False)
    return frozenset(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", res.stdout))


def soname_of(path: str) -> str:
    """A shared library's DT_SONAME, else its file name (what another file's DT_NEEDED names it by)."""
    res = subprocess.run(["readelf", "-d", "-W", path], capture_output=True, text=True, check=False)
    found = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", res.stdout)
    return found.group(1) if found else os.path.basename(path)


def prune_orphans(kept: Toc, dropped: Iterable[tuple[str, str, str]],
                  needs: Callable[[str], frozenset[str]] = needed,
                  soname: Callable[[str], str] | None = None) -> tuple[Toc, list[str]]:
    """Drop the libraries of `kept` that only files in `dropped` needed, transitively.

    A library nobody in the bundle names as NEEDED (sounddevice's dlopen'ed PortAudio, say) stays: only what a
    dropped file pulled in is a candidate. Libraries are matched by soname, wherever PyInstaller put them (top
    level, or av.libs/ with a top-level SYMLINK to the file: the symlink goes with its file). Returns the new
    TOC and the names removed.
    """
    soname_for = soname or soname_of
    candidates: set[str] = set()
    for _name, src, _kind in dropped:
        candidates |= needs(src)
    removed: list[str] = []
    toc = list(kept)
    while True:
        wanted: set[str] = set()
        for _name, src, kind in toc:
            if kind != "SYMLINK":
                wanted |= needs(src)
        orphans = {name for name, src, kind in toc
                   if kind != "SYMLINK" and soname_for(src) in candidates - wanted}
        if not orphans:
            return toc, removed
        for name, src, _kind in toc:
            if name in orphans:
                candidates |= needs(src)
        removed += sorted(orphans)
        # A top-level SYMLINK's "source" is the bundle path of the file it points at.
        toc = [entry for entry in toc if entry[0] not in orphans
               and not (entry[2] == "SYMLINK" and entry[1] in orphans)]


def _dynamic_symbols(path: str) -> tuple[list[tuple[str, str, int, str | None]], str]:
    """The defined dynamic symbols of a shared library (name, FUNC/OBJECT, size, version) and its soname."""
    res = subprocess.run(["readelf", "--dyn-syms", "-d", "-W", path], capture_output=True, text=True, check=True)
    soname = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", res.stdout)
    if soname is None:
        raise SystemExit(f"trim.py: {path} has no soname, so it cannot be stubbed")
    symbols = []
    for line in res.stdout.splitlines():
        fields = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(fields) < 8 or not fields[0].endswith(":") or fields[6] in ("UND", "ABS"):
            continue
        kind, bind, full = fields[3], fields[4], fields[7]
        if bind not in ("GLOBAL", "WEAK") or kind not in ("FUNC", "IFUNC", "OBJECT"):
            continue
        if "@" in full and "@@" not in full:
            continue  # an older, non-default version: nothing in the bundle links against it
        name, _sep, version = full.partition("@@")
        size = int(fields[2], 0)
        symbols.append((name, "OBJECT" if kind == "OBJECT" else "FUNC", size, version or None))
    return symbols, soname.group(1)


def _imported_symbols(paths: Iterable[str]) -> set[str]:
    """The undefined dynamic symbols of these ELF files (what they take from their NEEDED libraries)."""
    out: set[str] = set()
    for path in paths:
        res = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True, check=True)
        for line in res.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 8 and fields[0].endswith(":") and fields[6] == "UND":
                out.add(fields[7].split("@")[0])
    return out


def real_answers(real: str, names: Iterable[str]) -> dict[str, int | bytes]:
    """What the real library's ANSWERED functions among `names` return (they take no arguments)."""
    wanted = [name for name in names if name in ANSWERED]
    if not wanted:
        return {}
    lib = ctypes.CDLL(real)
    out: dict[str, int | bytes] = {}
    for name in wanted:
        fn = getattr(lib, name)
        fn.restype = ctypes.c_uint if ANSWERED[name] == "uint" else ctypes.c_char_p
        fn.argtypes = []
        answer = fn()
        if answer is None:
            raise SystemExit(f"trim.py: {name} of {real} returned NULL; stub it by hand")
        out[name] = answer
    return out


def build_stub(real: str, importers: Iterable[str], out_dir: Path, soname: str | None = None,
               reason: str = "voicegui only handles audio") -> Path:
    """Assemble and link the stub of one library for the files that import it; returns its path in out_dir.

    Only the symbols those files take from it are defined (the rest of its API is unreachable). `soname`: the
    stub's soname and file name, if not the real library's; `reason`: why it is not needed, for the line a call
    to the stub writes.
    """
    exported, real_soname = _dynamic_symbols(real)
    soname = soname or real_soname
    imported = _imported_symbols(importers)
    symbols = [sym for sym in exported if sym[0] in imported]
    answers = real_answers(real, (name for name, *_rest in symbols))
    lib = Path(real).name
    out_name = soname if soname != real_soname else lib
    out_dir.mkdir(parents=True, exist_ok=True)
    asm = [".text", "voicegui_stub_fail:",  # %rsi: the message, %rdx: its length
           "  mov $2, %edi", "  mov $1, %eax", "  syscall",
           f"  mov ${STUB_EXIT_STATUS}, %edi", "  mov $231, %eax", "  syscall", "  ud2"]
    data = [".section .rodata"]
    bss = [".bss"]
    for i, (name, kind, size, _version) in enumerate(symbols):
        if kind == "OBJECT":
            bss += [f".globl {name}", ".balign 16", f".type {name}, @object", f".size {name}, {max(size, 1)}",
                    f"{name}:", f"  .zero {max(size, 1)}"]
            continue
        asm += [f".globl {name}", f".type {name}, @function", f"{name}:"]
        if BENIGN.match(name):
            asm += ["  xor %eax, %eax", "  ret"]
            continue
        answer = answers.get(name)
        if isinstance(answer, int):
            asm += [f"  mov ${answer}, %eax", "  ret"]
            continue
        if isinstance(answer, bytes):
            data += [f"voicegui_answer_{i}: .asciz {_quote(answer.decode('latin-1'))}"]
            asm += [f"  lea voicegui_answer_{i}(%rip), %rax", "  ret"]
            continue
        message = (f"voicegui: this build replaced {lib} by a stub ({reason}), "
                   f"but {name} was called; see packaging/pyinstaller/trim.py\n")
        data += [f"voicegui_msg_{i}: .ascii {_quote(message)}"]
        asm += [f"  lea voicegui_msg_{i}(%rip), %rsi", f"  mov ${len(message)}, %edx", "  jmp voicegui_stub_fail"]
    source = out_dir / f"{lib}.s"
    source.write_text("\n".join(asm + data + bss) + "\n")
    obj = out_dir / f"{lib}.o"
    subprocess.run(["as", "--64", "-o", str(obj), str(source)], check=True)
    # noseparate-code: one page-aligned segment fewer per stub (13 kB -> 5 kB each; code and data are tiny).
    link = ["ld", "-shared", "-z", "noseparate-code", "-soname", soname, "-o", str(out_dir / out_name), str(obj)]
    versions = sorted({v for *_rest, v in symbols if v})
    if versions:
        script = out_dir / f"{lib}.map"
        nodes = []
        for version in versions:
            names = "".join(f" {n};" for n, _k, _s, v in symbols if v == version)
            nodes.append(f"{version} {{ global:{names} }};")
        unversioned = [n for n, _k, _s, v in symbols if not v]
        if unversioned:
            raise SystemExit(f"trim.py: {real} mixes versioned and unversioned symbols; stub it by hand")
        script.write_text("\n".join(nodes) + "\n")
        link += ["--version-script", str(script)]
    subprocess.run(link, check=True)
    return out_dir / out_name


def _quote(text: str) -> str:
    """`text` as a GNU as string literal: printable ASCII as is, anything else (newline, quote, backslash,
    bytes above 127 of a latin-1 decoded answer) as an octal escape, so each character stays one byte."""
    return '"' + "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\{ord(c):03o}" for c in text) + '"'


def stub_libraries(binaries: Toc, out_dir: Path) -> tuple[Toc, Toc]:
    """`binaries` with each STUBBED library's source replaced by its stub; and the originals (for pruning)."""
    out: Toc = []
    replaced: Toc = []
    # PyInstaller names PyAV's copies either at the top level or as av.libs/<file> with a top-level SYMLINK to
    # it (depending on how site-packages was found): the file itself (kind BINARY) is what gets the stub.
    for name, src, kind in binaries:
        soname = os.path.basename(name)
        if kind == "BINARY" and STUBBED.match(soname):
            # PyAV's own modules (EXTENSION) import from libswscale too, not only the other libraries.
            importers = [other for _n, other, k in binaries
                         if k in ("BINARY", "EXTENSION") and soname in needed(other)]
            out.append((name, str(build_stub(src, importers, out_dir)), kind))
            replaced.append((name, src, kind))
        else:
            out.append((name, src, kind))
    return out, replaced


# System libraries that only Qt Network's HTTP client needs, which voicegui never uses (its only Qt Network class
# is the hand-off's QLocalServer): MIT Kerberos's GSSAPI, for HTTP "Negotiate" sign-in, with the five libraries
# under it (1.5 MB). Each is stubbed under a soname of its own (same length, so the bundle's files that need it
# are patched in place to name it): under the real soname the stub would also stand in for the library for the
# system's own libraries loaded into the process (glibc's NIS module through libtirpc, say), which need the real
# one and now load the system's.
RENAMED_STUBS = {"libgssapi_krb5.so.2": "libvgstub_gssapi.so"}
RENAMED_REASON = "voicegui makes no HTTP requests through Qt"


def _section(path: str, name: str) -> tuple[int, int]:
    """(file offset, size) of one section of an ELF file."""
    res = subprocess.run(["readelf", "-S", "-W", path], capture_output=True, text=True, check=True)
    for line in res.stdout.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] == name:
            return int(fields[4], 16), int(fields[5], 16)
    raise SystemExit(f"trim.py: {path} has no {name} section")


def _dynamic_names(path: str) -> list[str]:
    """Every name in an ELF file's dynamic section and dynamic symbol table, as readelf prints them."""
    res = subprocess.run(["readelf", "-d", "--dyn-syms", "-V", "-W", path], capture_output=True, text=True,
                         check=True)
    return [line.split(None, 1)[1] if line.strip() else "" for line in res.stdout.splitlines()[1:]]


def rename_needed(path: str, old: str, new: str, out: Path) -> Path:
    """A copy of the ELF file `path` at `out` in which the needed library `old` is named `new`.

    The name is overwritten in place in .dynstr (hence the same length): no offset moves. The copy must differ
    from the original in that one name only, in its dynamic section, symbols and symbol versions alike (a
    linker may share a string's tail between names: such a file is refused, not patched).
    """
    if len(old) != len(new):
        raise SystemExit(f"trim.py: {new!r} must be as long as {old!r} to replace it in place")
    data = bytearray(Path(path).read_bytes())
    start, size = _section(path, ".dynstr")
    needle = b"\0" + old.encode() + b"\0"
    at = data.find(needle, start - 1, start + size)
    if at < 0 or data.find(needle, at + 1, start + size) >= 0:
        raise SystemExit(f"trim.py: {path} does not name {old} exactly once in .dynstr")
    data[at + 1:at + 1 + len(old)] = new.encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(data))
    out.chmod(Path(path).stat().st_mode)
    before, after = _dynamic_names(path), _dynamic_names(str(out))
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    if not changed or any(b.replace(old, new) != a for b, a in changed):
        raise SystemExit(f"trim.py: renaming {old} in {path} changed more than that name: {changed[:3]}")
    return out


def stub_renamed_libraries(binaries: Toc, out_dir: Path) -> tuple[Toc, Toc]:
    """`binaries` with each RENAMED_STUBS library replaced by its stub under its new name, and the files that
    need it by copies that name the stub; and the originals replaced (for pruning)."""
    replaced: Toc = []
    for old, new in RENAMED_STUBS.items():
        entry = next((e for e in binaries if e[0] == old and e[2] == "BINARY"), None)
        if entry is None:
            raise SystemExit(f"trim.py: {old} was not collected, so RENAMED_STUBS is out of date")
        importers = [e for e in binaries if e[2] in ("BINARY", "EXTENSION") and old in needed(e[1])]
        stub = build_stub(entry[1], [src for _n, src, _k in importers], out_dir, soname=new, reason=RENAMED_REASON)
        patched = {name: str(rename_needed(src, old, new, out_dir / "patched" / name))
                   for name, src, _kind in importers}
        binaries = [(new, str(stub), kind) if (name, src, kind) == entry else (name, patched.get(name, src), kind)
                    for name, src, kind in binaries]
        replaced.append(entry)
    return binaries, replaced


def _load_segments_aligned(path: Path) -> bool:
    """True if every PT_LOAD's file offset and address agree modulo its alignment, as the loader requires."""
    res = subprocess.run(["readelf", "-l", "-W", str(path)], capture_output=True, text=True, check=True)
    for line in res.stdout.splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"]:
            offset, vaddr, align = int(fields[1], 16), int(fields[2], 16), int(fields[-1], 16)
            if align > 1 and offset % align != vaddr % align:
                return False
    return True


def strip_binaries(binaries: Toc, out_dir: Path) -> tuple[Toc, list[str]]:
    """`binaries` with symbol tables and debug info stripped from copies in out_dir, where that is safe.

    PyInstaller's own strip=True strips every file in place of the build, which breaks libraries that
    auditwheel rewrote with patchelf (numpy's OpenBLAS: "ELF load command address/offset not page-aligned").
    Here each stripped copy is kept only if its load segments are still aligned; otherwise the original
    ships. Returns the new TOC and the names left unstripped for that reason.
    """
    out: Toc = []
    unsafe: list[str] = []
    for name, src, kind in binaries:
        if kind not in ("BINARY", "EXTENSION"):
            out.append((name, src, kind))
            continue
        sections = subprocess.run(["readelf", "-S", "-W", src], capture_output=True, text=True, check=False)
        if ".symtab" not in sections.stdout and ".debug_info" not in sections.stdout:
            out.append((name, src, kind))
            continue
        dst = out_dir / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["strip", "--strip-unneeded", "-o", str(dst), src], check=True)
        if _load_segments_aligned(dst):
            out.append((name, str(dst), kind))
        else:
            unsafe.append(name)
            out.append((name, src, kind))
    return out, unsafe


# ICU's data (libicudata, 32 MB, which Qt Core links): Qt uses ICU for case mapping, collation (sorting in
# file dialogs), text boundaries and, on request, legacy text encodings; its locale names and formats come from
# Qt's own CLDR tables. Kept: the core tables (*.icu, *.nrm, *.spp, *.cfu), collation and break rules, and of
# the per-locale bundles only root and English (ICU falls back to root for any other locale: a German user
# gets root collation, which sorts German correctly) and the time zone names (Qt's time zone display names).
# Dropped: the legacy codepage converters (*.cnv; UTF-8/16/32, Latin-1 and ASCII are built into ICU's code),
# the CJK/Thai/Khmer/Lao/Burmese word dictionaries, transliterators, spelled-out number rules, Unicode
# character names, the names of languages, regions, currencies and units (Qt has its own), and the other
# ~800 locales' bundles.
ICU_DROPPED_TREES = ("translit", "rbnf", "curr", "unit", "lang", "region")
ICU_DROPPED_FILES = {"unames.icu"}
ICU_KEPT_BUNDLES = {"root.res", "pool.res", "res_index.res", "en.res"}
_ICU_LOCALE_BUNDLE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9_]+)?\.res$")


def keep_icu_item(name: str) -> bool:
    """Whether one item of ICU's common data ("icudt73l/coll/root.res") stays (see above)."""
    parts = name.split("/")[1:]
    leaf = parts[-1]
    if leaf.endswith((".cnv", ".dict")) or leaf in ICU_DROPPED_FILES or (
            len(parts) > 1 and parts[0] in ICU_DROPPED_TREES):
        return False
    return leaf in ICU_KEPT_BUNDLES or not _ICU_LOCALE_BUNDLE.match(leaf)


def _icu_blob(path: str) -> tuple[str, bytes]:
    """The data symbol's name and its bytes (ICU's "common data": header, table of contents, items)."""
    syms = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True, check=True)
    found = re.search(r"^\s*\d+:\s+([0-9a-f]+)\s+(\S+)\s+OBJECT\s+GLOBAL\s+\S+\s+\d+\s+(icudt\d+_dat)\s*$",
                      syms.stdout, re.M)
    if found is None:
        raise SystemExit(f"trim.py: {path} has no icudt*_dat symbol; not the ICU data library this expects")
    addr, size, symbol = int(found.group(1), 16), int(found.group(2), 0), found.group(3)
    heads = subprocess.run(["readelf", "-l", "-W", path], capture_output=True, text=True, check=True)
    for line in heads.stdout.splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"]:
            offset, vaddr, filesz = int(fields[1], 16), int(fields[2], 16), int(fields[4], 16)
            if vaddr <= addr and addr + size <= vaddr + filesz:
                with open(path, "rb") as f:
                    f.seek(offset + addr - vaddr)
                    return symbol, f.read(size)
    raise SystemExit(f"trim.py: {symbol} of {path} is in no loaded segment")


def trim_icu_common_data(blob: bytes, keep: Callable[[str], bool]) -> tuple[bytes, list[str]]:
    """ICU common data with only the items `keep` accepts; returns it and the names dropped.

    Layout (ICU's udata.h and ucmndata.h): a header of `headerSize` bytes, then the table of contents (item
    count, then per item the offsets of its name and its data, both from the start of the table), the names,
    and each item 16-byte aligned. The order (sorted by name, for ICU's binary search) is kept.
    """
    header_size = int.from_bytes(blob[0:2], "little")
    if blob[2:4] != b"\xda\x27" or blob[12:16] != b"CmnD":
        raise SystemExit("trim.py: libicudata does not hold ICU common data (CmnD) as expected")
    count = int.from_bytes(blob[header_size:header_size + 4], "little")
    entries = []
    for i in range(count):
        at = header_size + 4 + 8 * i
        entries.append((int.from_bytes(blob[at:at + 4], "little"), int.from_bytes(blob[at + 4:at + 8], "little")))
    starts = sorted(data for _name, data in entries) + [len(blob) - header_size]
    ends = {start: starts[i + 1] for i, start in enumerate(starts[:-1])}
    items, dropped = [], []
    for name_at, data_at in entries:
        end = blob.index(b"\0", header_size + name_at)
        name = blob[header_size + name_at:end].decode("ascii")
        if keep(name):
            items.append((name, blob[header_size + data_at:header_size + ends[data_at]]))
        else:
            dropped.append(name)
    names = b"".join(name.encode("ascii") + b"\0" for name, _data in items)
    toc_size = 4 + 8 * len(items)
    name_offsets, at = [], toc_size
    for name, _data in items:
        name_offsets.append(at)
        at += len(name) + 1
    body = bytearray()
    data_offsets = []
    at = toc_size + len(names)
    for _name, data in items:
        pad = -(header_size + at) % 16
        body += b"\0" * pad
        at += pad
        data_offsets.append(at)
        body += data
        at += len(data)
    toc = len(items).to_bytes(4, "little") + b"".join(
        n.to_bytes(4, "little") + d.to_bytes(4, "little") for n, d in zip(name_offsets, data_offsets, strict=True))
    return blob[:header_size] + toc + names + bytes(body), dropped


def trim_icu_library(path: str, out_dir: Path) -> tuple[Path, list[str]]:
    """A libicudata with the same soname and data symbol, holding only what keep_icu_item keeps."""
    symbol, blob = _icu_blob(path)
    trimmed, dropped = trim_icu_common_data(blob, keep_icu_item)
    soname = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]",
                       subprocess.run(["readelf", "-d", "-W", path], capture_output=True, text=True,
                                      check=True).stdout)
    if soname is None:
        raise SystemExit(f"trim.py: {path} has no soname")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / f"{symbol}.bin"
    data.write_bytes(trimmed)
    source = out_dir / f"{symbol}.s"
    source.write_text(f'.section .rodata\n.globl {symbol}\n.type {symbol}, @object\n.balign 16\n{symbol}:\n'
                      f'.incbin "{data}"\n.size {symbol}, {len(trimmed)}\n')
    obj = out_dir / f"{symbol}.o"
    lib = out_dir / Path(path).name
    subprocess.run(["as", "--64", "-o", str(obj), str(source)], check=True)
    subprocess.run(["ld", "-shared", "-soname", soname.group(1), "-o", str(lib), str(obj)], check=True)
    return lib, dropped
