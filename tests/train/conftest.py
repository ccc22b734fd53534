import sys
from pathlib import Path

# tests/train helpers (tiny.py) importable from the tests and from the 2-process driver script.
sys.path.insert(0, str(Path(__file__).parent))
