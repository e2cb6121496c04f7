"""An optional language model behind a tiny protocol, for clip titles and reranking.

Any OpenAI-compatible endpoint works (`POST {base_url}/chat/completions`); it is chosen
by `CLYPAI_LLM_BASE_URL`, `CLYPAI_LLM_MODEL` and `CLYPAI_LLM_API_KEY`. Without them nothing
here is used and selection stays fully offline.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


class LLMError(Exception):
    """The language model could not answer (network, HTTP status, malformed reply)."""


@runtime_checkable
class LanguageModel(Protocol):
    """What selection needs from a language model: one chat turn in, text out."""

    def complete(self, prompt: str, *, system: str = "", max_tokens: int = 256) -> str: ...


class OpenAICompatibleLLM:
    """A chat model served at `base_url` (e.g. `http://host:8000/v1`), spoken to with requests."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        temperature: float = 0.2,
    ):
        if not base_url or not model:
            raise ValueError("an LLM needs both a base URL and a model name")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key or None
        self.timeout = timeout
        self.temperature = temperature

    def __repr__(self) -> str:
        return f"OpenAICompatibleLLM({self.base_url!r}, model={self.model!r})"

    def complete(self, prompt: str, *, system: str = "", max_tokens: int = 256) -> str:
        import requests

        messages = []
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": prompt})
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            response = requests.post(
                f"{self.base_url}/chat/completions",
                json={
                    "model": self.model,
                    "messages": messages,
                    "max_tokens": max_tokens,
                    "temperature": self.temperature,
                },
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise LLMError(f"LLM request failed: {exc}") from exc
        if response.status_code != 200:
            raise LLMError(f"LLM answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError("LLM reply is not a chat completion") from exc
        if not isinstance(content, str):
            raise LLMError("LLM reply has no text content")
        return content


def llm_from_env(environ: Mapping[str, str] | None = None) -> OpenAICompatibleLLM | None:
    """The configured LLM, or None when `CLYPAI_LLM_BASE_URL` / `CLYPAI_LLM_MODEL` are unset."""
    env = os.environ if environ is None else environ
    base_url = (env.get("CLYPAI_LLM_BASE_URL") or "").strip()
    model = (env.get("CLYPAI_LLM_MODEL") or "").strip()
    if not base_url or not model:
        return None
    timeout = float(env.get("CLYPAI_LLM_TIMEOUT") or 30)
    return OpenAICompatibleLLM(
        base_url, model, (env.get("CLYPAI_LLM_API_KEY") or "").strip() or None, timeout=timeout
    )


def parse_json_reply(text: str) -> Any:
    """The first JSON object or array in a model's reply (models wrap JSON in prose/fences)."""
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    for opener, closer in (("{", "}"), ("[", "]")):
        start = text.find(opener)
        end = text.rfind(closer)
        if start != -1 and end > start:
            try:
                return json.loads(text[start : end + 1])
            except ValueError:
                continue
    raise LLMError("LLM reply holds no JSON")
