"""Entry script of the PyInstaller build: the bundle's `voicegui` executable runs voicegui.cli.main.main.

A separate file (not voicegui/__main__.py) so PyInstaller does not put the voicegui/ folder itself on the
module search path, where its subpackages (decode, stream, server, ui, ...) would also be importable as top-level names.
"""

from voicegui.cli.main import main

raise SystemExit(main())
