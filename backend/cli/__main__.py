"""`python -m backend.cli`: the same as the `taskhub` console script."""

from backend.cli.main import main

main()
