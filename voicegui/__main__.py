"""`python -m voicegui` runs the same entry point as the `voicegui` script."""

from voicegui.cli.entry import run

raise SystemExit(run())
