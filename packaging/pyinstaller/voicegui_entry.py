"""Entry script of the PyInstaller build: the bundle's `voicegui` executable runs voicegui.cli.entry.main (the hand-off
to a running window first, then the command line).

A separate file (not voicegui/__main__.py) so PyInstaller does not put the voicegui/ folder itself on the
module search path, where its subpackages (decode, stream, server, ui, ...) would also be importable as top-level names.
"""

from voicegui.cli.entry import main

raise SystemExit(main())
