"""The HTTP API: Kling-compatible task endpoints and Kinema's own. Never imports torch."""
