"""Content parts of a message: text and images.

A message's content is either plain text or a list of parts; parts carry a ``type`` tag so a
list of them round-trips through JSON unambiguously.
"""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import model_validator

from ._validation import ValidatedModel

__all__ = ["ImagePart", "TextPart"]


class TextPart(ValidatedModel):
    """A run of text."""

    type: Literal["text"] = "text"
    text: str


class ImagePart(ValidatedModel):
    """An image, by URL or as base64 data with its media type.

    Examples:
        >>> ImagePart.from_url("https://example.com/cat.png").url
        'https://example.com/cat.png'
    """

    type: Literal["image"] = "image"
    url: str | None = None
    data: str | None = None
    media_type: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ImagePart:
        if (self.url is None) == (self.data is None):
            raise ValueError("give exactly one of url or data")
        if self.data is not None and not self.media_type:
            raise ValueError("base64 data needs a media_type such as 'image/png'")
        return self

    @classmethod
    def from_url(cls, url: str) -> ImagePart:
        return cls(url=url)

    @classmethod
    def from_base64(cls, data: str, media_type: str) -> ImagePart:
        return cls(data=data, media_type=media_type)

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str) -> ImagePart:
        return cls(data=base64.b64encode(raw).decode("ascii"), media_type=media_type)
