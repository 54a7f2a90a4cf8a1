"""A stub cluster: `sip-harness serve --workers N` (see `serve_cluster.py`)."""
