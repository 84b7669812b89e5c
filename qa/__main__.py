"""`python -m qa` runs the same CLI as the `qa` command."""

from qa.cli import main

main()
