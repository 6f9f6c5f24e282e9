"""Entry point for `python -m cnnlab`."""

from cnnlab.cli import main

raise SystemExit(main())
