"""The suite's warning filters (pyproject.toml): ours fail, a third party's deprecations do not."""

from __future__ import annotations

import warnings

import pytest


def _warn_from(module: str, category: type[Warning]) -> None:
    warnings.warn_explicit("something is going away", category, f"{module}.py", 1, module=module)


@pytest.mark.parametrize(
    "module", ["modelway.gateway.app", "modelway", "tests.unit.x", "bench.suite"]
)
@pytest.mark.parametrize("category", [DeprecationWarning, PendingDeprecationWarning, FutureWarning])
def test_a_deprecation_in_our_code_fails_the_suite(module: str, category: type[Warning]) -> None:
    with pytest.raises(category):
        _warn_from(module, category)


@pytest.mark.parametrize("module", ["anthropic.resources.messages", "modelway_plugin", "testsuite"])
@pytest.mark.parametrize("category", [DeprecationWarning, PendingDeprecationWarning, FutureWarning])
def test_a_deprecation_inside_a_third_party_package_is_only_shown(
    module: str, category: type[Warning]
) -> None:
    with warnings.catch_warnings(record=True) as shown:  # keeps the suite's filters
        _warn_from(module, category)
    assert [warning.category for warning in shown] == [category]


def test_any_other_warning_from_a_third_party_still_fails() -> None:
    with pytest.raises(RuntimeWarning):
        _warn_from("aiohttp.client", RuntimeWarning)
    with pytest.raises(UserWarning):
        _warn_from("anthropic.resources.messages", UserWarning)
