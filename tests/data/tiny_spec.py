"""Size of the tiny synthetic dataset the data tests share (see conftest.py)."""
NUM_SHOES, NUM_VIEWS, SIZE = 3, 6, 32
