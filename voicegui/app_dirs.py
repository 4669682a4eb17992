"""Where voicegui keeps its files: the per-user config, cache and log directories.

Each is platformdirs' per-user directory for "voicegui", unless its environment variable names another one
(tests, portable installs): $VOICEGUI_CONFIG_DIR (settings.json, the line-up's presets.json),
$VOICEGUI_CACHE_DIR (the history's index and audio), $VOICEGUI_LOG_DIR (the crash log). Nothing is created
here: the writers create what they need.

Pure functions of the environment (a base module: imports nothing of voicegui); safe on any thread.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "voicegui"
CONFIG_ENV = "VOICEGUI_CONFIG_DIR"
CACHE_ENV = "VOICEGUI_CACHE_DIR"
LOG_ENV = "VOICEGUI_LOG_DIR"


def config_dir() -> Path:
    """$VOICEGUI_CONFIG_DIR if set, else the platform's per-user config directory for voicegui."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override)
    # Imported here: `voicegui --help` and the tests that set the variable do not need it.
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """$VOICEGUI_CACHE_DIR if set, else the platform's per-user cache directory for voicegui."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    """$VOICEGUI_LOG_DIR if set, else the platform's per-user log directory for voicegui."""
    override = os.environ.get(LOG_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
