"""Keras models: the peephole, Clockwork and depth-gated recurrent layers, and the model zoo.

Importing `models.zoo` registers every custom layer with Keras, so saved models load with
`keras.saving.load_model(path)` and inside MLflow's pyfunc without `custom_objects`. The package
itself imports nothing, so `models.registry` (what the configuration checks against) loads
without TensorFlow.
"""
