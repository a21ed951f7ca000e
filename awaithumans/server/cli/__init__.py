"""Command-line entry points: dev, serve, create-agent-key, doctor and helpers."""
