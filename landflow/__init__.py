"""landflow: shared contracts, settings, registry and entry points."""
