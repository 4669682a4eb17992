"""Entry script of the PyInstaller build: the bundle's `voicegui` executable runs voicegui.cli.main.

A separate file (not voicegui/__main__.py) so PyInstaller does not put the voicegui/ folder itself on the
module search path, where its subpackages (core, server, ui) would also be importable as top-level names.
"""

from voicegui.cli import main

raise SystemExit(main())
