"""corpus_root under its old name, for tui/actions.py until that import names index.walk; new code imports
index.walk and index.readers."""

from index.walk import corpus_root

__all__ = ["corpus_root"]
