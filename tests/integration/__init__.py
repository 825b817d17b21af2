"""Integration tests: real processes on this machine, no Temporal unless a test says so."""
