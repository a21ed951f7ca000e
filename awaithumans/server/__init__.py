"""The awaithumans task server."""
