"""``python -m gatoms.report --profile P``: write ``figures/<P>/RESULTS.md`` (see :mod:`.markdown`)."""

import sys

from gatoms.report.markdown import main

sys.exit(main())
