"""The command-line tools; ``tools.common`` is their shared start-up."""
