"""landflow: the pure core (the vocabulary, facts, bodies, procedure, state and messages
of DOMAIN.md). It imports nothing of the project and no framework beyond pydantic."""
