"""``python -m nvrepro ...`` is the ``nvrepro`` command (:func:`nvrepro.cli.main`)."""

import sys

from nvrepro.cli import main

if __name__ == "__main__":
    sys.exit(main())
