"""Speak a text through voicegui's Player, with a progress line; the built-in offline voice unless a server
is given.

    python examples/speak.py "Hello there."
    python examples/speak.py "Hello there." --base-url http://127.0.0.1:8880/v1 --voice af_bella --model kokoro
"""

import argparse
import asyncio
import sys

from voicegui.server.embedded import BuiltinServer
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.player import Player
from voicegui.stream.session import SpeakOptions


async def speak(request: SpeechRequest) -> int:
    playback = await Player().start(SpeakOptions(request=request))
    assert playback is not None  # a new player starts what it is given
    while not playback.done.is_set():
        snap = playback.session.snapshot()
        played = snap.frames_played / (snap.sample_rate or 24000)
        print(f"\r{snap.state:<9} {played:5.2f} s played, {snap.buffered_ms:5.0f} ms buffered", end="", flush=True)
        await asyncio.sleep(0.1)
    m = playback.metrics
    if m is None or m.error:
        print(f"\nerror: {playback.failure if m is None else m.error}", file=sys.stderr)
        return 1
    print(f"\rdone: first sound after {m.ttfa_ms:.0f} ms, {m.audio_played_s:.2f} s played" + " " * 10)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text")
    parser.add_argument("--base-url"), parser.add_argument("--api-key", default="none")
    parser.add_argument("--model", default="tts-1"), parser.add_argument("--voice", default="alloy")
    args = parser.parse_args()
    if args.base_url:
        return asyncio.run(speak(SpeechRequest(args.base_url, args.api_key, args.model, args.voice, args.text, "pcm")))
    with BuiltinServer(lazy=True) as builtin:  # offline, on 127.0.0.1, for this run only
        request = SpeechRequest(builtin.base_url, builtin.token, builtin.default_model, builtin.default_voice,
                                args.text, "pcm")
        return asyncio.run(speak(request))


if __name__ == "__main__":
    sys.exit(main())
