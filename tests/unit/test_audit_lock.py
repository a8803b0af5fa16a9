"""``make audit`` when only PyPI's project endpoint answers: what it can and cannot vouch for."""

from __future__ import annotations

import httpx

from scripts.audit_lock import Finding, Pin, project_endpoint_findings, verdict

PROJECTS = {
    "starlette": {"info": {"version": "1.0.0"}, "vulnerabilities": []},
    "oldlib": {
        "info": {"version": "2.0"},
        "vulnerabilities": [{"id": "PYSEC-2099-1", "aliases": ["CVE-2099-1", "GHSA-x"]}],
    },
}


def pypi(request: httpx.Request) -> httpx.Response:
    name = request.url.path.split("/")[2]
    return httpx.Response(200, json=PROJECTS[name])


async def test_a_pin_at_the_latest_release_is_checked_against_its_advisories() -> None:
    findings = await project_endpoint_findings(
        [Pin("starlette", "1.0.0"), Pin("oldlib", "2.0")], transport=httpx.MockTransport(pypi)
    )

    failed, lines = verdict(findings, required=set())

    assert failed
    assert lines[0] == "VULNERABLE oldlib==2.0: PYSEC-2099-1 CVE-2099-1 GHSA-x"
    assert lines[-1].startswith("audited 2 of 2 pins")


def test_a_pin_behind_the_latest_release_is_reported_as_not_audited_never_passed() -> None:
    findings = [Finding(Pin("numpy", "2.4.0"), latest="2.5.0", advisories=["PYSEC-1"])]

    failed, lines = verdict(findings, required=set())

    # The advisories listed belong to 2.5.0, not to the pin: they say nothing about 2.4.0.
    assert not failed
    assert lines == [
        "audited 0 of 1 pins; not audited (pin behind the latest release): numpy==2.4.0"
    ]


def test_a_stale_pin_on_the_upload_path_fails_the_audit() -> None:
    findings = [Finding(Pin("python-multipart", "0.0.1"), latest="0.0.34")]

    failed, lines = verdict(findings, required={"python-multipart"})

    assert failed
    assert lines[0] == "NOT AUDITED python-multipart==0.0.1 (latest 0.0.34): upgrade the pin"
