"""Auditors' tools: a parcel's history, its replay, its decision trail, document checks."""
