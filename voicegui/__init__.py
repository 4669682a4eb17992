"""voicegui: a desktop player for OpenAI-compatible text-to-speech voices."""

__version__ = "0.1.0"
