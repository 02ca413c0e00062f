"""The HTTP API (FastAPI): app factory, dependencies, errors, middleware, metrics, routes."""
