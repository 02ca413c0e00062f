"""The sklearn-style "is it fitted?" check of replicast estimators."""

from __future__ import annotations

from forecasting.errors import NotFittedError


def check_fitted(estimator: object, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has the learned ``attribute``.

    Args:
        estimator: the model.
        attribute: a learned attribute set by ``fit`` (ends with ``_``).
    """
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call fit(history) before predict"
        )
