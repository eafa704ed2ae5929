"""`python -m pycache_cluster serve ...`: the same entry point as the console script."""
from pycache_cluster.cli import main

raise SystemExit(main())
