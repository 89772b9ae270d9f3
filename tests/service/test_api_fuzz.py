"""The API fuzzed by schemathesis from its own OpenAPI document, with a write
token, on SQLite and PostgreSQL: no server error, no undocumented status, no
response that breaks its schema, content type or headers, and every request
that breaks the schema is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.api import create_app
from service.domain import devices, searches, tokens
from service.domain.owners import Scope
from service.orchestration.benchmarks import register_benchmark
from service.runtime import Runtime
from service.settings import load_settings

if TYPE_CHECKING:
    from schemathesis import APIOperation
    from schemathesis.core.result import Ok

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
#: Operations that start real work (ONNX exports, on-machine measurement): run
#: in the suite they would measure this machine for minutes; see README for the
#: long run that includes them.
HEAVY = r"references\.zip|/export|local/measure"


@pytest.fixture
def served(db_url: str) -> Iterator[tuple[Any, str]]:
    from service.db import upgrade

    settings_ = load_settings(database_url=db_url, require_auth=True)
    with Runtime.open(settings_, check_schema=False) as rt:
        upgrade(rt.engine)
        with rt.session() as s:
            register_benchmark(s)
            _, secret = tokens.create_token(s, "fuzzer")
            devices.create_device(s, "phone", kind="remote", owner="fuzzer")
            spec = {"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 10}
            searches.submit_search(s, spec, scope=Scope("fuzzer"))
        yield create_app(rt), secret


def _fuzz(app: Any, secret: str, max_examples: int) -> list[str]:
    """Run every operation with positive and negative data; the failures found."""
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis.config import SchemathesisConfig
    from schemathesis.generation.modes import GenerationMode

    # A body over the size limit is refused with 413, a rejection like any other.
    rejected = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428"]
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": [*rejected, "429", "5xx"]}}}
    )
    api = schemathesis.openapi.from_asgi("/openapi.json", app, config=config).exclude(
        path_regex=HEAVY
    )
    headers = {"Authorization": f"Bearer {secret}"}
    failures: list[str] = []
    calls: dict[tuple[str, str], int] = {}
    for result in api.get_all_operations():
        operation = cast("Ok[APIOperation]", result).ok()  # schema errors are not expected
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            key = (operation.label, mode.value)

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                calls[key] = calls.get(key, 0) + 1  # noqa: B023 (run() is called in this iteration)
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                # Nothing to break: an operation without parameters or body
                # has no negative data.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # one report per operation and mode
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    for result in api.get_all_operations():
        operation = cast("Ok[APIOperation]", result).ok()  # schema errors are not expected
        label = operation.label
        fixed = not any(operation.iter_parameters()) and not operation.body
        if not fixed and calls.get((label, "positive"), 0) < max_examples:
            failures.append(f"{label}: only {calls.get((label, 'positive'), 0)} examples ran")
    return failures


@pytest.mark.slow
def test_api_conforms_to_its_schema(served: tuple[Any, str]) -> None:
    """5 examples per operation and mode in the suite; FUZZ_EXAMPLES=25 (or
    more) for the longer run documented in README."""
    app, secret = served
    failures = _fuzz(app, secret, max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5")))
    assert not failures, "\n\n".join(failures)
