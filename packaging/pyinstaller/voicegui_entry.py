"""Entry script of the PyInstaller build: the bundle's `voicegui` executable runs voicegui.cli.entry.run (the hand-off
to a running window first, then the command line).

A separate file (not voicegui/__main__.py) so PyInstaller does not put the voicegui/ folder itself on the
module search path, where its subpackages (decode, stream, server, ui, ...) would also be importable as top-level names.
"""

import sys

# The bundle has no Python interpreter to run a script with, so libespeak-ng's word-events helper runs as the
# bundle itself (voicegui/server/engines/espeak_events.helper_command), before the command line is imported.
if sys.argv[1:] == ["--espeak-events-helper"]:
    from voicegui.server.engines.espeak_events import main as helper

    raise SystemExit(helper())

from voicegui.cli.entry import run

raise SystemExit(run())
