"""The built-in model's world: a seeded renderer of one shape moving on a flat background.

Pure NumPy. It knows the world's rules, its words and how to read the rules back out of pixels
(the checker); it knows nothing of torch, files or HTTP.
"""
