"""Serving: the logged pyfunc model, batch forecasts into partitions, and Spark scale-out."""
