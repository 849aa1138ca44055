"""Runtime: what a logged model runs, shipped whole with it like `models/`.

The data contract, history checks, the readiness rule, scaling, windows and the forecaster
(`ForecastModel`, the MLflow pyfunc class). A logged model carries this package, `models/` and
the top-level `pipelines/__init__.py` as its MLflow code paths, so it loads in a process that has
never seen this repository. It imports nothing else of `pipelines` (import-linter checks it in
`make lint`): no configuration, training, tracking, serving or CLI code travels with a model.
"""
