"""The Textual chat front end (tui -> qa -> index)."""
