"""Text normalisation shared by training, serving and the actions.

Members type in WeChat with traditional characters, full-width digits and
punctuation, emoji and stray whitespace. All of it is folded to one form so the
classifier sees the same text at training and at serving time.
"""
import html
import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

import emoji
import opencc

# Long pastes (a whole web page, a 5,000-character message) carry no more
# intent than their start; capping keeps parse time flat.
MAX_CHARS = 300

_TAG = re.compile(r"<[^<>]{0,200}>")
_SPACE = re.compile(r"\s+")
# Zero-width and format characters (ZWJ, variation selectors, BOM) left over
# when emoji are removed or pasted from rich text.
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060-\u206f\ufe00-\ufe0f\ufeff]")
_CJK = re.compile(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])")


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def is_control(char: str) -> bool:
    """A control character (line breaks and tabs included) or a lone surrogate:
    PostgreSQL refuses NUL, and no encoder takes a lone surrogate."""
    return unicodedata.category(char) in ("Cc", "Cs")


def without_markup(text: str) -> str:
    """HTML escapes read and tags replaced by a space, as the classifier reads a message."""
    return _TAG.sub(" ", html.unescape(text))


def normalize(text: str, emoji_words: Mapping[str, str] | None = None) -> str:
    """Return the canonical form of a member's message ('' if it has no words).

    `emoji_words` reads some emoji as words first (👎 → a word for "no use").
    """
    if not text:
        return ""
    text = without_markup(text)
    for symbol, word in (emoji_words or {}).items():
        text = text.replace(symbol, f" {word} ")
    text = emoji.replace_emoji(text, replace=" ")
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _converter().convert(text)
    text = _SPACE.sub(" ", text).strip()
    # A space between two Chinese characters is a typing accident, not a word
    # boundary; removing it lets jieba see the real words.
    text = _CJK.sub("", text)[:MAX_CHARS].lower()
    # Punctuation alone ("？？？", "。。。") says nothing; treat it as empty.
    return text if any(ch.isalnum() for ch in text) else ""


def has_words(text: str) -> bool:
    """True if the normalised text has a letter, digit or Chinese character."""
    return bool(normalize(text))
