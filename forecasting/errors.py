"""The one exception hierarchy of replicast.

Domain code raises these; ``serving`` maps them to HTTP status codes and CLI
exit codes in one place.
"""

from __future__ import annotations


class ReplicastError(Exception):
    """Base class of every error replicast raises on purpose."""


class ConfigError(ReplicastError, ValueError):
    """Settings or the fleet description are inconsistent.

    >>> raise ConfigError("fleet.node_types[0].qps_capacity: must be > 0")
    Traceback (most recent call last):
    ...
    forecasting.errors.ConfigError: fleet.node_types[0].qps_capacity: must be > 0
    """


class DataValidationError(ReplicastError, ValueError):
    """Input data cannot be used as a whole (unreadable file, missing column)."""


class NotFittedError(ReplicastError, ValueError, AttributeError):
    """A model was asked to predict before ``fit``."""


class ModelNotFoundError(ReplicastError, LookupError):
    """No registered model (or alias) answers the request."""


class UnknownKeyError(ReplicastError, LookupError):
    """A cluster, region, series or segment that the fleet or lake does not know."""


class SourceError(ReplicastError):
    """A metrics source (file, PostgreSQL, Prometheus) failed; says which and what to fix."""


class PathEscapeError(ReplicastError, ValueError):
    """A path resolves outside the root it must stay under."""


class SyncError(ReplicastError):
    """A sync could not copy a file or segment (source vanished or kept changing, target full)."""
