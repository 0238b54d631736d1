"""Print Berth's coverage of the Appaloft reference's fields: ``python -m tests.appaloft_coverage``.

``--missing`` also lists every field that is neither present nor excluded (what the conformance
test fails on).
"""

import argparse
import sys
from typing import Any

import coordinator.api  # noqa: F401  (registers every route in ROUTES)
from coordinator.api.openapi import build_openapi
from tests.appaloft_reference import (
    OperationCoverage,
    coverage,
    load_exclusions,
    reference_bodies,
    reference_file,
    seeds_dir,
    stale_exclusions,
)


def measure() -> tuple[list[OperationCoverage], dict[str, tuple[str, Any]]]:
    """Coverage of every served operation, against the seeds found beside the repository."""
    seeds = seeds_dir()
    if seeds is None:
        raise FileNotFoundError("the Appaloft reference (../shared/seeds) is not there")
    reference = reference_bodies(reference_file(seeds).read_text(encoding="utf-8"))
    return coverage(build_openapi(), reference, load_exclusions()), reference


def render(results: list[OperationCoverage], show_missing: bool = False) -> str:
    """The per-operation table and the overall figure."""
    header = ("operation", "fields", "present", "excl.", "miss.", "cover")
    lines = ["{:<58} {:>6} {:>7} {:>5} {:>5} {:>6}".format(*header)]
    for r in sorted(results, key=lambda r: (r.percent, r.operation)):
        lines.append(
            f"{r.operation:<58} {r.total:>6} {len(r.present):>7} {len(r.excluded):>5}"
            f" {len(r.missing):>5} {r.percent:>5.0f}%"
        )
        if show_missing:
            lines.extend(f"    missing: {path}" for path in r.missing)
    total = sum(r.total for r in results)
    present = sum(len(r.present) for r in results)
    excluded = sum(len(r.excluded) for r in results)
    over_90 = sum(1 for r in results if r.percent >= 90)
    lines.append(
        f"overall: {present} of {total} reference fields present ({100.0 * present / total:.1f} %),"
        f" {excluded} excluded with a reason, {total - present - excluded} missing;"
        f" {over_90} of {len(results)} served operations at >= 90 %"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--missing", action="store_true", help="list the unexplained fields")
    args = parser.parse_args()
    results, reference = measure()
    print(render(results, args.missing))
    for row in stale_exclusions(results, reference, load_exclusions()):
        print(f"stale exclusion (explains nothing): {row.operation} {row.path}")
    return 1 if any(r.missing for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
