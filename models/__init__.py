"""Keras models: the peephole, Clockwork and depth-gated recurrent layers, and the model zoo.

Importing the package registers every custom layer with Keras, so saved models load with
`keras.saving.load_model(path)` and inside MLflow's pyfunc without `custom_objects`.
"""

from models import clockwork, depth_gated, peephole, zoo  # noqa: F401  (registration happens on import)
