"""Metric sources: live PostgreSQL servers and Prometheus, read into lake datasets.

:func:`snapshot` dispatches a source URI on its scheme; each source returns frames
keyed by input dataset name (``node_metrics``, ``segment_access``) ready for
``pipelines.ingest.ingest_frame``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pandas as pd

from forecasting.errors import SourceError
from forecasting.redact import redact
from forecasting.settings import Settings


def snapshot(uri: str, settings: Settings) -> dict[str, pd.DataFrame]:
    """Read one snapshot of a live source.

    Args:
        uri: ``postgresql://user@host:port/db?...`` or ``prometheus://host:9090?...``.
        settings: the replicast settings (fleet naming, intervals).

    Returns:
        Dataset name -> frame of rows following ``forecasting.schemas``.

    Raises:
        SourceError: unknown scheme, or the source failed (the message names it and the fix).
    """
    scheme = urlsplit(uri).scheme
    if scheme in ("postgresql", "postgres"):
        from pipelines.sources import postgres  # deferred: psycopg only for postgresql://

        return postgres.snapshot(uri, settings)
    if scheme in ("prometheus", "prometheus+https"):
        from pipelines.sources import prometheus  # deferred: httpx only for prometheus://

        return prometheus.snapshot(uri, settings)
    raise SourceError(
        f"{redact(uri)!r}: unknown source scheme {scheme!r}; use one of postgresql://, prometheus://"
    )
