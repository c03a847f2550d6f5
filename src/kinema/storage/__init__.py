"""Media storage: where inputs and results live, addressed by keys; the database keeps only keys."""
