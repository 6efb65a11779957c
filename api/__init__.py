"""The HTTP API under /v1 (FastAPI): commands, queries, audit, metrics, early-warning signals."""
