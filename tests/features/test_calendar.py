"""Calendar features are computed in each region's local time."""

from __future__ import annotations

import pandas as pd

from features.calendar import calendar_features, timezone_of


def test_asia_shanghai_local_hour_and_weekday() -> None:
    ts = pd.to_datetime(["2024-03-08 20:00", "2024-03-09 03:00"], utc=True)  # Fri 20:00 UTC
    frame = pd.DataFrame({"series_id": ["orders/cn-north", "orders/us-east"], "ts": ts, "y": 1.0})
    out = calendar_features(frame, {"cn-north": "Asia/Shanghai", "us-east": "America/New_York"})
    cn, us = out.iloc[0], out.iloc[1]
    assert cn.hour == 4 and cn.dayofweek == 5 and cn.is_weekend == 1  # Sat 04:00 in Shanghai
    assert us.hour == 22 and us.dayofweek == 4 and us.is_weekend == 0  # Fri 22:00 in New York


def test_timezone_lookup_by_series_then_region() -> None:
    zones = {"orders/cn-north": "Asia/Tokyo", "cn-north": "Asia/Shanghai"}
    assert timezone_of("orders/cn-north", zones) == "Asia/Tokyo"
    assert timezone_of("users/cn-north", zones) == "Asia/Shanghai"
    assert timezone_of("users/eu-west", zones) == "UTC"
