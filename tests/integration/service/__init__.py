"""Tests of service.processes with tiny real programs."""
