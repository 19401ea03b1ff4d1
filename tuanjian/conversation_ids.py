"""Conversation ids: each channel's user ids in a namespace of their own.

The Rasa conversation (tracker) of a member is "<channel>:<the channel's user
id>", set by the channel on the server: a REST client that names a WeChat
OpenID as its sender gets "rest:<OpenID>", a conversation of its own, and the
actions read the channel from the id rather than from anything a client sent.
"""

SEPARATOR = ":"
UNKNOWN_CHANNEL = "other"  # an id no channel of ours made (Rasa's own shell, say)


def conversation_id(channel: str, external_id: str) -> str:
    return f"{channel}{SEPARATOR}{external_id}"


def split_conversation_id(conversation: str) -> tuple[str, str]:
    """(channel, the channel's user id)."""
    channel, separator, external_id = conversation.partition(SEPARATOR)
    if not separator or not channel or not external_id:
        return UNKNOWN_CHANNEL, conversation
    return channel, external_id
