"""Recording, archive and playback of calls, with captions per language."""
