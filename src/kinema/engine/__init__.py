"""The engine: one request becomes one video (or image); modes, long-video extension, codecs."""
