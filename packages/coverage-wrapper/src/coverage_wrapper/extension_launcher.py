#!/usr/bin/env python3
"""The executable Lambda starts as the coverage extension (``extensions/lambda-coverage``).

Layer builders copy this file, unchanged, to the layer's ``extensions/``
folder (:func:`coverage_wrapper.extension.install_extension`). It runs with
the interpreter the Python runtime puts first on ``PATH`` and finds the
wrapper relative to its own location (``../python``), so it works from
``/opt/extensions`` on Lambda and from any folder in tests. It imports only
the standard library and the wrapper's light modules before it registers.
"""

import os
import sys


def main() -> int:
    """Put the layer's ``python/`` folder on the path and run the extension."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(os.path.dirname(here), "python"))
    from coverage_wrapper.extension import main as run_extension

    return run_extension(os.path.basename(__file__))


if __name__ == "__main__":
    sys.exit(main())
