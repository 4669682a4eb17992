"""features: what is built on top of a Speak: history (index + audio cache), line-up (several voices in turn)
and its reports. Uses voicegui.stream and voicegui.decode, never voicegui.ui; no Qt.
"""
