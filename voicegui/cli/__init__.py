"""cli: the `voicegui` command: the window, speak, serve, lineup, bench, devices, desktop install.

`main.main` is the entry point; each subcommand lives in its own module and is imported only when used.
"""
