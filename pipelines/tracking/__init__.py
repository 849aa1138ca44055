"""MLflow at the edge: runs, logged results, plots, the registry and its champion rule, lineage."""
