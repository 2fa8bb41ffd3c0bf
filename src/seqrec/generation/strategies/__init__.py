"""One file per generation strategy; each registers itself by its ``name``."""
