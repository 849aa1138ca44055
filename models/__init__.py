"""Keras models: the peephole LSTM layer and the model zoo. Arrays in, arrays out.

Importing the package registers every custom layer with Keras, so saved models load with
`keras.saving.load_model(path)` and inside MLflow's pyfunc without `custom_objects`.
"""

from models import peephole, zoo  # noqa: F401  (registration happens on import)
