"""Flow-matching samplers: a few stateless functions over tensors."""
