"""Text helpers below every pipeline stage: name normalisation shared by banks, matching and search."""
