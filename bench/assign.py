"""Assignments per second: tuneloop's hash assignment vs GrowthBook's Python SDK, same run.

Both evaluate the same experiment (two arms, 90 % baseline / 10 % candidate) for the same
unit ids, in-process, with no network:

  * ours: ``Assigner.assign(unit_id)`` (built once per experiment, as the router holds it);
  * ours, one-shot: ``assign(key, unit_id, arms)`` (builds the arm layout on every call);
  * GrowthBook: ``gb.set_attributes({"id": unit_id}); gb.run(experiment)`` on one client
    (hash version 2), its cheapest per-request path.

Rounds are interleaved and the best of each is kept (the machine may be shared). Prints
each rate, the candidate share each produced (a check that both really split 90/10) and
the ratio ours / GrowthBook (goal >= 10x).

    python bench/assign.py                 # 300,000 ids (GrowthBook: 30,000)
    python bench/assign.py --units 20000   # smoke run
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from growthbook import Experiment, GrowthBook

from tuneloop.experiments.assignment import Assigner, assign

KEY = "ab-test-20250102-001"
ARMS = [("baseline", 0.9), ("candidate", 0.1)]


def ours(ids: list[str]) -> list[str]:
    assigner = Assigner(KEY, ARMS)
    return [assigner.assign(unit) for unit in ids]


def ours_one_shot(ids: list[str]) -> list[str]:
    return [assign(KEY, unit, ARMS) for unit in ids]


def growthbook(ids: list[str]) -> list[str]:
    client = GrowthBook(attributes={"id": ""})
    experiment = Experiment(
        key=KEY,
        variations=[name for name, _ in ARMS],
        weights=[weight for _, weight in ARMS],
        hashVersion=2,
    )
    arms = []
    for unit in ids:
        client.set_attributes({"id": unit})
        arms.append(client.run(experiment).value)
    return arms


def measure(run: Callable[[list[str]], list[str]], ids: list[str]) -> tuple[float, float]:
    """(seconds, candidate share)."""
    start = time.perf_counter()
    arms = run(ids)
    seconds = time.perf_counter() - start
    return seconds, arms.count("candidate") / len(arms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ids = [f"user-{index}" for index in range(args.units)]
    gb_ids = ids[: max(args.units // 10, 1000)]  # GrowthBook is slower: fewer ids, same rate
    contenders = {
        "tuneloop Assigner.assign": (ours, ids),
        "tuneloop assign() one-shot": (ours_one_shot, gb_ids),
        "GrowthBook gb.run": (growthbook, gb_ids),
    }
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for name, (run, units) in contenders.items():
            seconds, share = measure(run, units)
            rate = len(units) / seconds
            if name not in best or rate > best[name][0]:
                best[name] = (rate, share)
    print(f"{args.units:,} unit ids (GrowthBook {len(gb_ids):,}), best of {args.rounds} rounds")
    for name, (rate, share) in best.items():
        print(f"{name:28s} {rate:>12,.0f} assignments/s   candidate share {share:.3f}")
    ratio = best["tuneloop Assigner.assign"][0] / best["GrowthBook gb.run"][0]
    print(f"ratio ours / GrowthBook: {ratio:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
