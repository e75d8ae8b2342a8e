"""Cross-check fixtures: one built case (spec at one set of sizes) per module-scoped param,
so pytest builds each case once, runs every check on it, then frees it."""

from __future__ import annotations

import pytest
from crosscheck_harness import Case, all_cases, build_case, case_id

CASES = all_cases()


@pytest.fixture(scope="module", params=CASES, ids=[case_id(c) for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    path, values = request.param
    if values is None:
        pytest.fail(f"{path} has no cross-check sizes: add an entry to tests/crosscheck/sizes.yaml "
                    f"(at least 3 values per symbol, odd and large ones included)", pytrace=False)
    return build_case(path, values)


def pytest_configure(config: pytest.Config) -> None:
    # Noise from the frameworks themselves, not from nnspec.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore:Using padding='same' with even kernel lengths:UserWarning")
