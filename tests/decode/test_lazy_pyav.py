"""The decoders load PyAV (FFmpeg) only for the formats that need it: a pcm or wav body never maps it."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import io, json, sys, wave
import numpy as np
from voicegui.decode.stream_decoder import create_decoder
seen = {}
pcm = (np.sin(np.arange(4800) / 10) * 8000).astype("<i2").tobytes()
dec = create_decoder("pcm", output_rate=24000)
n = sum(len(c) for c in [dec.feed(pcm), dec.flush()])
buf = io.BytesIO()
with wave.open(buf, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(24000); w.writeframes(pcm)
dec = create_decoder("wav", output_rate=24000)
n += sum(len(c) for c in [dec.feed(buf.getvalue()), dec.flush()])
seen["after_pcm_and_wav"] = "av" in sys.modules
seen["frames"] = n
from voicegui.server.encode import StreamingEncoder
enc = StreamingEncoder("mp3", 24000)
body = enc.encode(np.zeros(4800, np.float32)) + enc.finish()
dec = create_decoder("mp3", output_rate=24000)
dec.feed(body); dec.flush()
seen["after_mp3"] = "av" in sys.modules
print(json.dumps(seen))
"""


def test_pcm_and_wav_decode_without_pyav_and_mp3_loads_it():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"after_pcm_and_wav": False, "frames": 9600, "after_mp3": True}
