"""The hwnas service: settings, database models and repositories, CLI, HTTP API, workers."""
