"""``python -m ledgerflow.cli`` is the same as the ``ledgerflow`` command."""

import sys

from ledgerflow.cli.main import main

sys.exit(main())
