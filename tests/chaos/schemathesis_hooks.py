"""Schemathesis hooks of scenario 10 (``SCHEMATHESIS_HOOKS=tests.chaos.schemathesis_hooks``).

Loaded by the ``schemathesis run`` process, not by pytest: the scenario passes what they need
through the environment.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, HookContext, Response

# What the README's Security section lists as open; everything else needs a key.
PUBLIC = {("GET", "/health")}
# Artifacts the scenario uploaded and saw processed, so the generated requests reach real
# results, text and reprocessing, not only 404s for random ids.
KNOWN_ARTIFACTS = [i for i in os.environ.get("CHAOS_ARTIFACT_IDS", "").split(",") if i]
API_KEY = os.environ.get("CHAOS_API_KEY", "")


@schemathesis.hook
def before_generate_path_parameters(context: HookContext, strategy: Any) -> Any:
    operation = context.operation
    if operation is None or "{artifact_id}" not in operation.path or not KNOWN_ARTIFACTS:
        return strategy
    known = st.sampled_from(KNOWN_ARTIFACTS).map(lambda i: {"artifact_id": i})
    return st.one_of(strategy, known)


@schemathesis.check
def no_unauthenticated_success(ctx: CheckContext, response: Response, case: Case[Any]) -> None:
    """A 2xx from a route behind the key, for a request without that key."""
    if (case.method.upper(), case.operation.path) in PUBLIC:
        return
    sent = response.request.headers.get("authorization", "")
    if 200 <= response.status_code < 300 and sent != f"Bearer {API_KEY}":
        raise AssertionError(f"{response.status_code} without an API key")
