"""The built-in server replaying a 2 s clip (tests/replay_server.py) for the tests in this directory."""

from tests.replay_server import engine, server  # noqa: F401 (pytest fixtures, found by name)
