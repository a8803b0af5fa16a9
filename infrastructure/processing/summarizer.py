"""``Summarizer`` adapters: LexRank offline (the default), or an OpenAI-compatible endpoint.

Both read a bounded prefix of the text, so a huge document costs no more than a large
one, and both are deterministic for a given input (the chat endpoint is asked for
temperature 0; whether it honours that is up to the model).
"""

from __future__ import annotations

import re
from contextlib import suppress

import openai
from sumy.models.dom import ObjectDocumentModel, Paragraph  # type: ignore[import-untyped]
from sumy.parsers.plaintext import PlaintextParser  # type: ignore[import-untyped]
from sumy.summarizers.lex_rank import (  # type: ignore[import-untyped]
    LexRankSummarizer as SumyLexRank,
)
from sumy.utils import get_stop_words  # type: ignore[import-untyped]

from application.ports import SummaryCandidate, SummaryUnavailable

# A sentence ends at . ! ? or an ellipsis (or their CJK forms) followed by space, unless
# a lowercase letter follows ("e.g. this", "approx. ten").
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026\u3002\uff01\uff1f])\s+(?![a-z])")
_WORD = re.compile(r"\w+")


class RegexTokenizer:
    """Sentences and words by regular expression, in the shape sumy's parsers expect.

    sumy's own ``Tokenizer`` needs NLTK's punkt data, downloaded at run time; a worker
    must summarize without reaching the internet.
    """

    def __init__(self, language: str = "english") -> None:
        self.language = language

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        # A "sentence" without a word in it would only dilute LexRank's graph.
        return tuple(
            sentence.strip()
            for sentence in _SENTENCE_END.split(paragraph)
            if _WORD.search(sentence)
        )

    def to_words(self, sentence: str) -> tuple[str, ...]:
        return tuple(_WORD.findall(sentence))


class LexRankSummarizer:
    """Picks the document's most central sentences (LexRank), in document order."""

    source = "lexrank"

    def __init__(
        self,
        *,
        pipeline_version: str,
        sentences: int = 3,
        language: str = "english",
        max_chars: int = 20_000,
        # LexRank compares every sentence with every other one: quadratic time.
        max_sentences: int = 200,
    ) -> None:
        self._pipeline_version = pipeline_version
        self._sentences = sentences
        self._tokenizer = RegexTokenizer(language)
        self._max_chars = max_chars
        self._max_sentences = max_sentences
        self._lexrank = SumyLexRank()
        # Without a stop-word list for the language, rank without one.
        with suppress(LookupError):
            self._lexrank.stop_words = get_stop_words(language)

    def summarize(self, text: str) -> SummaryCandidate:
        parsed = PlaintextParser.from_string(text[: self._max_chars], self._tokenizer).document
        sentences = parsed.sentences[: self._max_sentences]
        chosen = self._lexrank(ObjectDocumentModel([Paragraph(sentences)]), self._sentences)
        return SummaryCandidate(
            text=" ".join(_shortened(str(sentence)) for sentence in chosen),
            source=self.source,
            model=self.source,
            pipeline_version=self._pipeline_version,
        )


# Text from PDFs often lacks sentence punctuation (tables, headings, code), so a "sentence"
# can run for pages; a summary sentence is cut at a word boundary past this many characters.
MAX_SENTENCE_CHARS = 300


def _shortened(sentence: str) -> str:
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return sentence
    cut = sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0]
    return cut + " …"


SYSTEM_PROMPT = (
    "You summarize documents. Reply with a short, factual summary of the document the "
    "user sends, in the document's language: at most three sentences, no preamble."
)


class OpenAICompatibleSummarizer:
    """Asks any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, Ollama, ...).

    The SDK's own retries are off: Temporal retries the activity, with backoff and a
    bound, and one layer of retries is enough.
    """

    source = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        pipeline_version: str,
        timeout: float = 60.0,
        max_chars: int = 12_000,
        max_tokens: int = 300,
        # The SDK's HTTP client; tests pass one with a fake transport.
        http_client: openai.DefaultHttpxClient | None = None,
    ) -> None:
        self._client = openai.OpenAI(
            base_url=base_url,
            # Local servers need no key, but the SDK refuses to start without one.
            api_key=api_key or "unused",
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )
        self._model = model
        self._pipeline_version = pipeline_version
        self._max_chars = max_chars
        self._max_tokens = max_tokens

    def summarize(self, text: str) -> SummaryCandidate:
        if not text.strip():
            return self._candidate("", self._model)
        try:
            completion = self._client.chat.completions.create(
                model=self._model,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": text[: self._max_chars]},
                ],
                temperature=0,
                max_tokens=self._max_tokens,
            )
        except openai.APIConnectionError as err:  # timeouts included
            raise SummaryUnavailable(
                f"the summarizer endpoint is unreachable: {err}", retryable=True
            ) from err
        except openai.APIStatusError as err:
            # Overload, rate limits and server errors may pass; a rejected request will not.
            retryable = err.status_code in (408, 409, 429) or err.status_code >= 500
            raise SummaryUnavailable(
                f"the summarizer endpoint answered {err.status_code}: {err.message}",
                retryable=retryable,
            ) from err
        except openai.APIError as err:
            raise SummaryUnavailable(
                f"the summarizer endpoint failed: {err}", retryable=False
            ) from err
        content = completion.choices[0].message.content if completion.choices else None
        if not content or not content.strip():
            raise SummaryUnavailable("the summarizer endpoint returned no summary", retryable=False)
        return self._candidate(content.strip(), completion.model or self._model)

    def _candidate(self, text: str, model: str) -> SummaryCandidate:
        return SummaryCandidate(
            text=text, source=self.source, model=model, pipeline_version=self._pipeline_version
        )
