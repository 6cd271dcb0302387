"""The package type-checks: `mypy -p openraft_fast` finds no error (with the stubs of the
compiled modules)."""
import os
import subprocess
import sys


def test_mypy_finds_no_error():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-m", "mypy", "-p", "openraft_fast", "--cache-dir", os.devnull],
                         cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
