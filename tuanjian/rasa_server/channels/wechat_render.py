"""Rasa's collected messages as WeChat text: numbered options, size limits."""
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

# A WeChat text message (passive reply or customer-service message) holds at
# most 2048 bytes of UTF-8.
MAX_TEXT_BYTES = 2048

_NUMBER = re.compile(r"^[0-9]{1,3}$")


def render(messages: Sequence[dict[str, Any]], hint: str | None) -> tuple[str, list[str]]:
    """One text for a turn's messages, and the payloads of its numbered options.

    Messages are joined with a blank line; buttons become "1. 标题" lines,
    numbered across the whole turn, and the hint follows the last of them.
    """
    blocks: list[str] = []
    payloads: list[str] = []
    last_with_options = None
    for message in messages:
        lines = [message[key] for key in ("text", "image", "attachment") if message.get(key)]
        for button in message.get("buttons") or []:
            payloads.append(button.get("payload") or button.get("title") or "")
            lines.append(f"{len(payloads)}. {button.get('title') or ''}")
            last_with_options = len(blocks)
        if lines:
            blocks.append("\n".join(lines))
    if last_with_options is not None and hint:
        blocks[last_with_options] += "\n" + hint
    return "\n\n".join(blocks), payloads


def chosen_payload(text: str, payloads: Sequence[str]) -> str | None:
    """The payload of option N when the message is just N (half- or full-width)."""
    number = unicodedata.normalize("NFKC", text or "").strip()
    if not _NUMBER.match(number):
        return None
    index = int(number) - 1
    return payloads[index] if 0 <= index < len(payloads) else None


def spoken_number(transcript: str) -> str:
    """A voice transcript that is just a number, as the number typed: speech
    recognition writes a spoken option number with a sentence's end, in
    digits or in Chinese numerals ("2" or its numeral, then a full stop).
    Any other transcript unchanged."""
    bare = unicodedata.normalize("NFKC", transcript or "").strip()
    while bare and unicodedata.category(bare[-1]).startswith("P"):
        bare = bare[:-1].rstrip()
    digits = "".join(_digit(character) for character in bare)
    return digits if _NUMBER.match(digits) else transcript


def _digit(character: str) -> str:
    """The digit a character stands for (0-9, a Chinese numeral included), else itself."""
    value = unicodedata.numeric(character, -1.0)
    return str(int(value)) if value in range(10) else character


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Parts of at most `limit` UTF-8 bytes, cut at paragraphs, else lines,
    else between characters."""
    text = text.strip()
    if not text:
        return []
    if utf8_len(text) <= limit:
        return [text]
    for separator in ("\n\n", "\n"):
        if separator in text:
            return [part for chunk in _pack(text.split(separator), separator, limit)
                    for part in split_text(chunk, limit)]
    parts, current, size = [], "", 0
    for char in text:
        char_size = utf8_len(char)
        if size + char_size > limit:
            parts.append(current)
            current, size = "", 0
        current += char
        size += char_size
    return parts + [current]


def _pack(pieces: list[str], separator: str, limit: int) -> list[str]:
    """Greedily join consecutive pieces while the result fits; a single piece
    that is too long stays alone (split_text cuts it further)."""
    chunks: list[str] = []
    current: str | None = None
    for piece in pieces:
        joined = piece if current is None else current + separator + piece
        if current is not None and utf8_len(joined) > limit:
            chunks.append(current)
            current = piece
        else:
            current = joined
    if current is not None:
        chunks.append(current)
    return chunks
