"""decode: response bytes -> float32 mono samples, incrementally, for each of the six formats. No Qt, no I/O.

`stream_decoder.StreamDecoder` is the front: it sniffs the container from the first bytes and hands the body to
one backend per format (`pcm` for pcm/wav, `mpeg` for mp3/aac, `flac`, `opus`). The framers (`flac_frames`,
`mpeg_frames`, `ogg`) cut whole frames/packets out of the byte stream as it arrives; `codec` holds the PyAV
plumbing the compressed backends share and `samples` the sample conversion. Everything here runs on whichever
thread calls it (the asyncio loop in the app) and keeps no global state.
"""
