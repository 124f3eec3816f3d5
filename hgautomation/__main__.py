"""Allow ``python -m hgautomation``."""

import sys

from hgautomation.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="hgautomation"))
