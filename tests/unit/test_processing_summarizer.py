"""Summaries: LexRank offline, or an OpenAI-compatible endpoint behind a fake transport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import openai
import pytest

from application.ports import Summarizer, SummaryCandidate, SummaryUnavailable
from infrastructure.processing.summarizer import (
    MAX_SENTENCE_CHARS,
    SYSTEM_PROMPT,
    LexRankSummarizer,
    OpenAICompatibleSummarizer,
    RegexTokenizer,
)

ARTICLE = """\
Temporal runs workflows durably. A workflow survives the crash of the worker that runs it.

Activities do the work that touches the world. An activity that fails is retried by Temporal.
Heartbeats tell Temporal that a long activity is alive. A retried activity resumes from its \
last heartbeat.

The weather was pleasant on the day of the release. Lunch was served at noon.
"""


def test_the_tokenizer_splits_sentences_without_downloaded_data() -> None:
    tokenizer = RegexTokenizer()

    assert tokenizer.to_sentences("One is here. Two, e.g. this one! Three? 4 is a number") == (
        "One is here.",
        "Two, e.g. this one!",
        "Three?",
        "4 is a number",
    )
    assert tokenizer.to_words("Köln's café, 2024!") == ("Köln", "s", "café", "2024")


def test_sentences_without_a_word_are_dropped() -> None:
    assert RegexTokenizer().to_sentences("Real sentence. ... !!! —") == ("Real sentence.",)


def test_lexrank_picks_central_sentences_in_document_order() -> None:
    summarizer: Summarizer = LexRankSummarizer(pipeline_version="v7", sentences=2)

    summary = summarizer.summarize(ARTICLE)

    assert summary.source == "lexrank"
    assert summary.model == "lexrank"
    assert summary.pipeline_version == "v7"
    assert summary.text.count(".") == 2
    assert "Lunch" not in summary.text
    assert "weather" not in summary.text
    first, second = summary.text.split(". ", 1)
    assert ARTICLE.index(first) < ARTICLE.index(second)


def test_lexrank_is_deterministic() -> None:
    summarizer = LexRankSummarizer(pipeline_version="v1")

    assert summarizer.summarize(ARTICLE) == summarizer.summarize(ARTICLE)


@pytest.mark.parametrize("text", ["", "   \n\n", "... !!!"])
def test_a_text_without_sentences_has_an_empty_summary(text: str) -> None:
    assert LexRankSummarizer(pipeline_version="v1").summarize(text).text == ""


def test_lexrank_reads_only_the_first_max_chars() -> None:
    # Were the tail read, its many identical sentences would be the most central.
    head = "Alpha beta gamma. Beta gamma delta. Gamma delta alpha.\n"
    tail = "Marker words repeat here. " * 2000
    summarizer = LexRankSummarizer(pipeline_version="v1", max_chars=len(head))

    assert "Marker" not in summarizer.summarize(head + tail).text


def test_lexrank_reads_only_the_first_max_sentences() -> None:
    head = "Alpha beta gamma. Beta gamma delta. Gamma delta alpha. "
    summarizer = LexRankSummarizer(pipeline_version="v1", max_sentences=3)

    assert "Marker" not in summarizer.summarize(head + "Marker words repeat. " * 50).text


Handler = Callable[[httpx2.Request], httpx2.Response]


class FakeChatEndpoint:
    """An OpenAI-compatible endpoint at the transport level: records what it was sent."""

    def __init__(self, respond: Handler) -> None:
        self.requests: list[httpx2.Request] = []
        self._respond = respond

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self._respond(request)

    def summarizer(self, **overrides: object) -> OpenAICompatibleSummarizer:
        settings: dict[str, object] = {
            "base_url": "http://llm.test/v1",
            "api_key": "sk-test",
            "model": "small-model",
            "pipeline_version": "v3",
            "max_chars": 50,
        }
        settings.update(overrides)
        return OpenAICompatibleSummarizer(
            **settings,  # type: ignore[arg-type]
            http_client=openai.DefaultHttpxClient(transport=httpx2.MockTransport(self)),
        )

    def sent(self) -> dict[str, object]:
        body = json.loads(self.requests[-1].content)
        assert isinstance(body, dict)
        return body


def completion(content: str | None, model: str = "small-model-2024") -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
        },
    )


def test_the_endpoint_is_asked_for_a_summary_of_the_bounded_text() -> None:
    endpoint = FakeChatEndpoint(lambda request: completion("  A short summary.\n"))

    summary = endpoint.summarizer().summarize("x" * 80)

    assert summary == SummaryCandidate(
        text="A short summary.", source="openai", model="small-model-2024", pipeline_version="v3"
    )
    (request,) = endpoint.requests
    assert str(request.url) == "http://llm.test/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    body = endpoint.sent()
    assert body["model"] == "small-model"
    assert body["temperature"] == 0
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "x" * 50},
    ]


def test_a_blank_text_is_not_sent() -> None:
    endpoint = FakeChatEndpoint(lambda request: completion("unused"))

    assert endpoint.summarizer().summarize(" \n").text == ""
    assert endpoint.requests == []


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True)])
def test_an_overloaded_endpoint_is_worth_a_retry_by_temporal_not_by_the_sdk(
    status: int, retryable: bool
) -> None:
    endpoint = FakeChatEndpoint(lambda request: httpx2.Response(status, json={"error": {}}))

    with pytest.raises(SummaryUnavailable) as unavailable:
        endpoint.summarizer().summarize("Some text.")

    assert unavailable.value.retryable is retryable
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_rejected_request_is_not_worth_a_retry(status: int) -> None:
    endpoint = FakeChatEndpoint(
        lambda request: httpx2.Response(status, json={"error": {"message": "no"}})
    )

    with pytest.raises(SummaryUnavailable) as unavailable:
        endpoint.summarizer().summarize("Some text.")

    assert unavailable.value.retryable is False
    assert str(status) in str(unavailable.value)


def test_a_timeout_is_worth_a_retry() -> None:
    def too_slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("no answer in time", request=request)

    endpoint = FakeChatEndpoint(too_slow)

    with pytest.raises(SummaryUnavailable) as unavailable:
        endpoint.summarizer(timeout=0.5).summarize("Some text.")

    assert unavailable.value.retryable is True
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize("content", [None, "   "])
def test_an_empty_answer_is_no_summary(content: str | None) -> None:
    endpoint = FakeChatEndpoint(lambda request: completion(content))

    with pytest.raises(SummaryUnavailable) as unavailable:
        endpoint.summarizer().summarize("Some text.")

    assert unavailable.value.retryable is False


def test_a_run_on_sentence_from_a_pdf_is_cut_short_in_the_summary() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    summary = LexRankSummarizer(pipeline_version="t", sentences=1).summarize(words)

    assert summary.text.endswith(" …")
    assert len(summary.text) <= MAX_SENTENCE_CHARS + 2
    assert summary.text.startswith("word0 word1 ")
