"""Hubs: where re-uploads live. One module per hub implementing the interface in base.py."""
