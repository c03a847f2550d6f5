"""The `kinema` command line: the composition root that reads settings and builds the pieces."""
