import sys
from pathlib import Path

# the tiny-checkpoint helper (tests/train/tiny.py) and the browser driver (benchmarks/serve_load.py)
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "train"))
sys.path.insert(0, str(ROOT / "benchmarks"))
