"""The `mirrorwatch` command line: thin commands over the service layer."""
