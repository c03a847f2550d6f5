"""Training of the built-in model on the rendered world: data batches and the budgeted, resumable loop."""
