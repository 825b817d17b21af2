"""The registry: a projection of the engine for fast reads and the public lists."""
