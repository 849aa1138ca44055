"""The import path of models logged before the stage layout.

Models registered before `pipelines/` was split into stages pickled their python model as
`pipelines.pyfunc.ForecastModel`. A process that already imported this checkout's `pipelines`
(the batch forecast, `main`) resolves that name here, so a champion registered earlier keeps
forecasting after an upgrade. New models name `pipelines.serving.pyfunc.ForecastModel`.
"""

from pipelines.serving.pyfunc import ForecastModel

__all__ = ["ForecastModel"]
