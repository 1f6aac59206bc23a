"""`python -m bench [NAME …]`: run the benchmarks (all of them without names)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names: list[str]) -> int:
    available = sorted(module.name.removeprefix("bench_")
                       for module in pkgutil.iter_modules([str(Path(__file__).parent)])
                       if module.name.startswith("bench_"))
    chosen = names or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    failed = 0
    for name in chosen:
        print(f"== {name}")
        module = importlib.import_module(f"bench.bench_{name}")
        failed += 0 if module.main() else 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
