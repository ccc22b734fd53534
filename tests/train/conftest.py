import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402

# Stand-ins only for contract pieces not in the tree yet (see standins.py); real modules win.
standins.install()


def pytest_report_header(config):
    return f"tests/train stand-ins in use: {standins.INSTALLED or 'none'}"
