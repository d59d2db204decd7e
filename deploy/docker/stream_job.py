"""``spark-submit`` entry point of the scoring job in the image: runs :func:`streaming.job.main`.

A launcher rather than the installed ``streaming/job.py`` itself, so that the script's directory
(first on ``sys.path``) holds nothing that could shadow a module.
"""

import sys

from streaming.job import main

sys.exit(main())
