"""Live multilingual captions: streaming Whisper transcription and Argos translation."""
