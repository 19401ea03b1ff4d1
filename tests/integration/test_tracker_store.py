"""The conversations of the end-to-end tests are kept where scripts/run.sh keeps
them: Rasa's SQL tracker store on a SQLite file, which the help-desk report reads."""
import json

import sqlalchemy as sa

from tuanjian.tracker_events import EVENTS


def stored_events(tracker_db, sender):
    """Read through the report's own definition of Rasa's table."""
    engine = sa.create_engine(f"sqlite:///{tracker_db}", future=True)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(EVENTS).where(EVENTS.c.sender_id == sender).order_by(EVENTS.c.id)).all()
    engine.dispose()
    return rows


def test_each_turn_is_stored_with_its_intent_and_answer(assistant, new_chat, domain_dict):
    answer = domain_dict["responses"]["utter_faq_party_member_transfer"][0]["text"]
    chat = new_chat()
    assert answer in chat.say("入党了还要转团关系吗")
    chat.say("谢谢")
    rows = stored_events(assistant.tracker_db, f"rest:{chat.sender}")
    users = [(r.intent_name, json.loads(r.data)["text"]) for r in rows if r.type_name == "user"]
    assert users == [("faq_party_member_transfer", "入党了还要转团关系吗"), ("thank", "谢谢")]
    assert "utter_faq_party_member_transfer" in [r.action_name for r in rows]
