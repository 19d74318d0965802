"""``python -m guardrail.audit verify|report ...``."""

import sys

from guardrail.audit.cli import main

sys.exit(main())
