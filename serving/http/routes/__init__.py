"""HTTP routes, one module per group; each exposes ``router``."""
