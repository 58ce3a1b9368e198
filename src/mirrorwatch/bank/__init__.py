"""Banks of removed models: reading sheets and Civitai JSON, normalising, importing."""
