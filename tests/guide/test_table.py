"""Every row of the destination decision table, and which questions it asks."""
import pytest

from tuanjian.backend.guide.table import load_table

TABLE = load_table()
NOT_PARTY_YOUNG = {"party_member": False, "over_28": False}

# facts -> destination: one case per row at least (checked below).
CASES = [
    ({**NOT_PARTY_YOUNG, "graduate_situation": "就业", "employer_has_league_org": True}, "employer_organisation"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "自主创业", "employer_has_league_org": True}, "employer_organisation"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "就业", "employer_has_league_org": False}, "employer_town_branch"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "自主创业", "employer_has_league_org": False}, "employer_town_branch"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "劳务派遣", "user_unit_has_league_org": True}, "user_unit_organisation"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "劳务派遣", "user_unit_has_league_org": False},
     "dispatch_agency_or_user_unit_town_branch"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "升学"}, "admitting_school"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "参军"}, "army_unit"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "因公出国"}, "sending_unit"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "因私出国"}, "residence_town_branch"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "出国留学"}, "written_application"),
    ({**NOT_PARTY_YOUNG, "graduate_situation": "未就业"}, "home_town_branch_or_community"),
    # FAQ 9: a Party member under 28 goes with the Party relation, whatever the situation.
    ({"graduate_situation": "升学", "party_member": True, "over_28": False}, "with_party_relation"),
    ({"graduate_situation": "就业", "employer_has_league_org": False, "party_member": True, "over_28": False},
     "with_party_relation"),
    # FAQ 15 / 8: 28 or older without a league post leaves automatically, Party member or not.
    ({"graduate_situation": "就业", "employer_has_league_org": True, "party_member": False,
      "over_28": True, "holds_league_post": False}, "automatic_leaving"),
    ({"graduate_situation": "未就业", "party_member": True, "over_28": True, "holds_league_post": False},
     "automatic_leaving"),
    # ... but 28 or older WITH a league post keeps 团籍 and transfers.
    ({"graduate_situation": "就业", "employer_has_league_org": True, "party_member": False,
      "over_28": True, "holds_league_post": True}, "employer_organisation"),
]


@pytest.mark.parametrize("facts, destination", CASES)
def test_row(facts, destination):
    assert TABLE.questions_needed(facts) == []
    assert TABLE.destination(facts) == destination


def test_every_row_is_covered():
    assert {row["destination"] for row in TABLE.rows} == {d for _, d in CASES}


def test_every_destination_has_a_reply(domain_dict):
    for row in TABLE.rows:
        assert f"utter_destination_{row['destination']}" in domain_dict["responses"]


def test_every_question_has_a_prompt_and_a_slot(domain_dict):
    for question in TABLE.questions:
        assert f"utter_ask_{question['fact']}" in domain_dict["responses"]
        assert question["fact"] in domain_dict["slots"]


@pytest.mark.parametrize(
    "facts, asked",
    [
        ({}, ["graduate_situation", "party_member", "over_28"]),
        ({"graduate_situation": "就业"}, ["employer_has_league_org", "party_member", "over_28"]),
        ({"graduate_situation": "自主创业"}, ["employer_has_league_org", "party_member", "over_28"]),
        ({"graduate_situation": "劳务派遣"}, ["user_unit_has_league_org", "party_member", "over_28"]),
        ({"graduate_situation": "升学"}, ["party_member", "over_28"]),
        ({"graduate_situation": "升学", "over_28": True}, ["party_member", "holds_league_post"]),
        ({"graduate_situation": "参军", "party_member": False, "over_28": False}, []),
    ],
)
def test_only_the_questions_the_table_needs(facts, asked):
    assert TABLE.questions_needed(facts) == asked


def test_nothing_is_guessed_while_a_fact_is_missing():
    assert TABLE.destination({"graduate_situation": "就业", "party_member": False, "over_28": False}) is None


def test_a_changed_situation_forgets_its_follow_ups():
    assert set(TABLE.dependants("graduate_situation")) == {"employer_has_league_org", "user_unit_has_league_org"}
    assert TABLE.dependants("over_28") == ["holds_league_post"]


def test_unknown_values_are_not_valid():
    assert TABLE.is_valid("graduate_situation", "升学")
    assert not TABLE.is_valid("graduate_situation", "去火星")
