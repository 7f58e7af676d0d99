"""Run the pytest suite of the Python package (ctest's "python" test).

Exits 77 (ctest: skipped) when numpy or pytest is missing, unless
SW_REQUIRE_PYTHON is set, as CI does, in which case that is a failure.
"""
import importlib.util
import os
import sys

missing = [m for m in ("numpy", "pytest") if importlib.util.find_spec(m) is None]
if missing:
    print(f"python tests skipped: {', '.join(missing)} not installed "
          f"(python3 -m pip install {' '.join(missing)})")
    sys.exit(1 if os.environ.get("SW_REQUIRE_PYTHON") else 77)

# Python put this file's folder, python/, first on sys.path; the source
# package there has no compiled _core and would hide the built one that
# PYTHONPATH names, so it comes off.
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]

import pytest  # noqa: E402

sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
