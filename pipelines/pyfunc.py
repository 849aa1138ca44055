"""The import path of models logged before the stage layout.

Models registered before `pipelines/` was split into stages pickled their python model as
`pipelines.pyfunc.ForecastModel` (later ones as `pipelines.serving.pyfunc.ForecastModel`, which
that module keeps). A process that already imported this checkout's `pipelines` (the batch
forecast, `main`) resolves that name here, so a champion registered earlier keeps forecasting
after an upgrade. New models are logged as code (`pipelines/runtime/logged_model.py`), not pickled.
"""

from pipelines.runtime.forecaster import ForecastModel

__all__ = ["ForecastModel"]
