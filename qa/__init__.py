"""Answers questions from an index: retrieve, fuse, extract, cite, evaluate."""
