"""An in-memory keyring backend for tests (PYTHON_KEYRING_BACKEND=tests.ui.memory_keyring.MemoryKeyring).

Tests never touch the developer's real keyring: tests/ui/conftest.py and tests/test_settings.py install
this backend (keyring.set_keyring) for each test and set PYTHON_KEYRING_BACKEND to it, so a child process
started by a test picks it too. Nothing is written to disk.
"""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]  # keyring declares priority as a class property

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError(username)
