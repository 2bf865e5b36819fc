"""The command-line tools; ``tools.common`` holds their shared flags and
one-line errors, :mod:`mmdetnas.apis.tool_setup` their shared start-up."""
