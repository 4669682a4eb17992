"""ui: the PySide6 window. `app.run_window` starts Qt with the qasync loop and the built-in server;
`main_window.MainWindow` holds the panels (provider, tuning, TTFA, network simulator, plots, history, A/B,
line-up). Everything here runs on the Qt GUI thread, which is also the asyncio loop's thread; it reads the
streaming session's state through its snapshots and never imports the cli.
"""
