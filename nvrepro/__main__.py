"""``python -m nvrepro ...`` is the ``nvrepro`` command (:func:`nvrepro.core.cli.main`)."""

import sys

from nvrepro.core.cli import main

if __name__ == "__main__":
    sys.exit(main())
