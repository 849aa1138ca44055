"""The file MLflow logs as a forecast model's code (MLflow's "models from code").

MLflow runs this file when it saves a model and again when it loads one, after putting the
model's code paths (this package, `models/`) first on `sys.path`; the model object it sets is
never pickled, so a model loads whatever the installed CloudPickle version. Nothing imports this
module: it exists to be run by MLflow.
"""

import mlflow.models

from pipelines.runtime.forecaster import ForecastModel

mlflow.models.set_model(ForecastModel())
