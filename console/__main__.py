"""``python -m console`` runs the command-line interface."""

from console.cli import main

main()
