"""The first procedure (`ParcelWorkflow`), frozen so that running parcels finish on it."""
