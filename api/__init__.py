"""The HTTP API: FastAPI over the Temporal client and the registry."""
