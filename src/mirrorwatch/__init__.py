"""mirrorwatch: trace removed AI models to their re-uploads."""

__version__ = "0.1.0"
