"""memgpt tokenize (being written)."""
import sys
sys.exit(0)
