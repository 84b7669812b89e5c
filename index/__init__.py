"""Turns a folder of documents into a persisted, searchable index (load, normalise, chunk, embed, store)."""
