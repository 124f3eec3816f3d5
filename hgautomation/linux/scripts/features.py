"""Run Mercurial's own feature checks (tests/hghave.py) on this host and print the results.

Read from stdin by the Python the tests would use:

    PYTHON - DIR FEATURE...

DIR holds the checkout's hghave.py. Prints one JSON object: feature -> true, false,
or "error: ..." when the check itself failed. Each check is bounded in time.
"""

from __future__ import annotations

import json
import os
import signal
import sys

CHECK_SECONDS = 30


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print("usage: PYTHON - DIR FEATURE...", file=sys.stderr)
        return 2
    directory, wanted = argv[0], argv[1:]
    sys.path.insert(0, directory)
    os.chdir(directory)  # some checks make temporary files in the current directory
    import hghave

    signal.signal(signal.SIGALRM, _alarm)
    results: dict[str, object] = {}
    for name in wanted:
        entry = hghave.checks.get(name)
        if entry is None:
            results[name] = "error: no such check in this checkout's hghave.py"
            continue
        signal.alarm(CHECK_SECONDS)
        try:
            results[name] = bool(entry[0]())
        except Timeout:
            results[name] = f"error: check did not finish in {CHECK_SECONDS}s"
        except Exception as exc:  # noqa: BLE001 - a broken check is a result to report
            results[name] = f"error: {type(exc).__name__}: {exc}"
        finally:
            signal.alarm(0)
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
