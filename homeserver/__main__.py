"""`python -m homeserver` is the `chatgo` command."""

import sys

from homeserver.cli import main

sys.exit(main())
