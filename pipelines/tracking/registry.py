"""The model registry: every registered model gets a version, and the champion rule decides which
version the alias `champion` points at.

The rule, in one place: a version becomes the champion when its validation MAE in scaled units
(`SELECTION_METRIC`) is lower than the current champion's, or there is no champion. Ties keep
the current champion. Test metrics never choose a model.
"""

from __future__ import annotations

from pipelines.config.schema import CHAMPION_ALIAS

SELECTION_METRIC = "val_mae"
"""The metric (lower is better) that decides whether a new version becomes the champion."""


def beats(candidate: float, incumbent: float | None) -> bool:
    """The champion rule on two `SELECTION_METRIC` values: lower wins, a tie keeps the
    incumbent, and no incumbent (or one without the metric) always loses.

    Example:
        >>> beats(0.40, 0.41), beats(0.41, 0.41), beats(0.50, None)
        (True, False, True)
    """
    return incumbent is None or candidate < incumbent


def register_and_promote(
    model_uri: str, registered_model_name: str, *, run_id: str, validation_mae: float
) -> tuple[str, bool]:
    """Registers a logged model as a new version and moves `champion` if it is better.

    The run that trained the model gets the tag `champion` = "true" or "false".

    Args:
        model_uri: the logged model (`models:/<model id>` or `runs:/<run id>/<name>`).
        registered_model_name: the registered model (created when missing).
        run_id: the run that logged the model.
        validation_mae: the model's `SELECTION_METRIC` (validation, scaled units).

    Returns:
        The new version and whether it became the champion (`update_champion`'s rule).
    """
    import mlflow

    version = str(mlflow.register_model(model_uri, registered_model_name).version)
    promoted = update_champion(registered_model_name, version, validation_mae)
    mlflow.MlflowClient().set_tag(run_id, "champion", "true" if promoted else "false")
    return version, promoted


def update_champion(registered_model_name: str, version: str, validation_mae: float) -> bool:
    """Points the `champion` alias at `version` if it beats the current champion on validation.

    The current champion's `SELECTION_METRIC` is read from its run. No champion, or one whose
    run has no such metric, is replaced. Ties keep the current champion. Test metrics never
    take part.

    Args:
        registered_model_name: the registered model.
        version: the new version.
        validation_mae: the new version's `val_mae` (scaled units).

    Returns:
        True when the alias now points at `version`.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        champion = client.get_model_version_by_alias(registered_model_name, CHAMPION_ALIAS)
    except MlflowException:
        champion = None
    if champion is not None and champion.run_id:
        best = client.get_run(champion.run_id).data.metrics.get(SELECTION_METRIC)
        if not beats(validation_mae, best):
            return False
    client.set_registered_model_alias(registered_model_name, CHAMPION_ALIAS, version)
    return True
