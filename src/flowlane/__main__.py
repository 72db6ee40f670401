"""``python -m flowlane`` runs the command line (used to start worker processes)."""

from flowlane.cli.main import main

main()
