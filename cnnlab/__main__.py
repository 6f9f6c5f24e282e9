"""Entry point for `python -m cnnlab`."""

from cnnlab.cli.main import main

raise SystemExit(main())
