"""Training stage: fit a zoo model and evaluate it beside the baselines. No MLflow."""
