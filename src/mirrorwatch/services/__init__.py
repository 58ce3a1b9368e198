"""The service layer: what the CLI and the web app both do, with no presentation in it."""
