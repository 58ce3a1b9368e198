"""Sweeps: list a hub, fetch hashes of candidate files, persist, match — resumable."""
