"""One POST to a TTS web service, with every failure turned into a :class:`TtsProviderError`."""

from __future__ import annotations

from typing import Any, Final

import httpx

from voxflow.errors import TtsProviderError

MAX_ERROR_TEXT: Final = 300


def _error_text(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:MAX_ERROR_TEXT] + ("…" if len(text) > MAX_ERROR_TEXT else "") or "(no body)"


async def post_for_audio(
    client: httpx.AsyncClient,
    provider: str,
    url: str,
    *,
    headers: dict[str, str],
    content: bytes | None = None,
    json: Any = None,
    params: dict[str, str] | None = None,
) -> bytes:
    """POST and return the response body; raise naming the status and the service's error."""
    try:
        response = await client.post(
            url, headers=headers, content=content, json=json, params=params
        )
    except httpx.TimeoutException:
        raise TtsProviderError(f"{provider} TTS: request to {url} timed out", provider) from None
    except httpx.HTTPError as exc:
        raise TtsProviderError(
            f"{provider} TTS: request to {url} failed: {exc}", provider
        ) from None
    if response.status_code >= 400:
        raise TtsProviderError(
            f"{provider} TTS: HTTP {response.status_code} from {url}: {_error_text(response)}",
            provider,
            status=response.status_code,
        )
    if not response.content:
        raise TtsProviderError(f"{provider} TTS: empty audio from {url}", provider)
    return response.content
