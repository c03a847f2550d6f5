"""Model backends: one adapter per model family behind the `Backend` protocol."""
