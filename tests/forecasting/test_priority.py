from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ConfigError, DataValidationError, UnknownKeyError
from forecasting.priority import max_wait_after, order_link, prioritize
from forecasting.settings import Fleet


def test_smiths_rule_orders_by_weight_over_cost() -> None:
    names = ["a", "b", "c"]
    weight = np.array([1.0, 10.0, 4.0])
    cost = np.array([1.0, 5.0, 1.0])  # scores 1, 2, 4
    order = order_link(names, weight, cost, np.zeros(3), max_wait_s=1e9)
    assert [names[i] for i in order] == ["c", "b", "a"]


def _weighted_completion(perm, weight: np.ndarray, cost: np.ndarray) -> float:
    done = np.cumsum(cost[list(perm)])
    return float((weight[list(perm)] * done).sum())


def test_smith_order_minimises_weighted_completion_on_random_cases() -> None:
    rng = np.random.default_rng(0)
    from itertools import permutations

    for _ in range(20):
        weight = rng.uniform(0, 5, 5)
        cost = rng.uniform(0.1, 3, 5)
        order = order_link(list("abcde"), weight, cost, np.zeros(5), max_wait_s=1e9)

        best = min(_weighted_completion(p, weight, cost) for p in permutations(range(5)))
        assert _weighted_completion(order, weight, cost) == pytest.approx(best)


def test_ageing_bound_lets_an_old_cold_segment_jump_ahead() -> None:
    names = ["hot1", "hot2", "hot3", "cold"]
    weight = np.array([100.0, 90.0, 80.0, 0.0])
    cost = np.array([10.0, 10.0, 10.0, 10.0])
    waited = np.array([0.0, 0.0, 0.0, 75.0])
    order = order_link(names, weight, cost, waited, max_wait_s=100.0)
    # without ageing the cold one would finish at 40 s (75 + 40 s > the 100 s bound)
    plain = order_link(names, weight, cost, np.zeros(4), max_wait_s=1e9)
    assert names[plain[-1]] == "cold"
    assert max_wait_after(order, cost, waited) <= 100.0
    # and it is not moved further forward than needed: hot1 still goes first
    assert names[order[0]] == "hot1"
    assert names[order[1]] == "cold"


def test_ageing_bound_holds_on_random_feasible_cases() -> None:
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(50):
        n = 8
        cost = rng.uniform(1, 5, n)
        weight = rng.exponential(10, n)
        waited = rng.uniform(0, 20, n)
        # tight enough that the plain Smith order often breaks it
        bound = float(np.max(waited + cost.sum()) - rng.uniform(0, 10))
        order = order_link([f"s{i}" for i in range(n)], weight, cost, waited, max_wait_s=bound)
        # earliest-deadline-first meets the bound whenever any order can; so must ours
        edf = np.argsort(bound - waited, kind="stable")
        if max_wait_after(edf, cost, waited) <= bound:
            checked += 1
            assert max_wait_after(order, cost, waited) <= bound + 1e-9
    assert checked > 10


def test_ties_are_deterministic_and_independent_of_input_order() -> None:
    names = ["b", "a", "c", "d"]
    weight = np.array([2.0, 2.0, 2.0, 2.0])
    cost = np.ones(4)
    waited = np.array([0.0, 0.0, 5.0, 0.0])
    order = order_link(names, weight, cost, waited, max_wait_s=1e9)
    assert [names[i] for i in order] == ["c", "a", "b", "d"]  # older first, then by name
    perm = [3, 2, 1, 0]
    again = order_link(
        [names[i] for i in perm], weight[perm], cost[perm], waited[perm], max_wait_s=1e9
    )
    assert [names[perm[i]] for i in again] == ["c", "a", "b", "d"]


def test_prioritize_ranks_per_replica_link_using_its_bandwidth() -> None:
    fleet = Fleet()
    pending = pd.DataFrame(
        {
            "cluster": ["orders"] * 4,
            "replica": ["eu-west", "eu-west", "cn-north", "cn-north"],
            "segment": ["x", "y", "x", "y"],
            "weight": [1.0, 3.0, 1.0, 3.0],
            "bytes_to_send": [1e6, 9e6, 1e6, 9e6],  # y: 3x the reads, 9x the bytes
            "waited_s": [0.0, 0.0, 0.0, 0.0],
        }
    )
    ranked = prioritize(pending, fleet=fleet, max_wait_s=3600)
    cn = ranked[ranked["replica"] == "cn-north"]
    assert list(cn["segment"]) == ["x", "y"]
    assert list(cn["rank"]) == [1, 2]
    bw = fleet.region("cn-north").bandwidth_bytes_s
    assert cn["cost_s"].iloc[0] == pytest.approx(1e6 / bw)
    assert cn["score"].iloc[0] == pytest.approx(1.0 / (1e6 / bw))


def test_prioritize_bad_inputs_are_clear_errors() -> None:
    fleet = Fleet()
    good = pd.DataFrame(
        {
            "cluster": ["orders"],
            "replica": ["mars"],
            "segment": ["x"],
            "weight": [1.0],
            "bytes_to_send": [1.0],
            "waited_s": [0.0],
        }
    )
    with pytest.raises(UnknownKeyError, match="mars"):
        prioritize(good, fleet=fleet, max_wait_s=10)
    with pytest.raises(DataValidationError, match="weight"):
        prioritize(good.assign(replica="eu-west", weight=-1.0), fleet=fleet, max_wait_s=10)
    with pytest.raises(DataValidationError, match="bytes_to_send"):
        prioritize(good.drop(columns="bytes_to_send"), fleet=fleet, max_wait_s=10)
    with pytest.raises(ConfigError, match="max_wait_s"):
        order_link(["a"], np.ones(1), np.ones(1), np.zeros(1), max_wait_s=0)
