import pytest

from flowlane.core.errors import Refused
from flowlane.engine.taskrules import check_transition, may_act

GROUPS = {"group:sales": ["boris", "maria"], "role:owner": ["olga"]}


def users_of(selector: str) -> list[str]:
    return GROUPS.get(selector, [])


HOMEWORK = {
    "statuses": ["new", "in_progress", "done", "completed"],
    "initial": "new",
    "final": ["completed"],
    "transitions": [
        {"from": "new", "to": "in_progress", "by": "assignee"},
        {"from": "in_progress", "to": "done", "by": "assignee"},
        {"from": "done", "to": "completed", "by": "role:owner"},
        {"from": "done", "to": "in_progress", "by": "role:owner", "comment": "required"},
    ],
}


@pytest.mark.parametrize(
    ("user", "role", "allowed"),
    [
        ("anna", "client", True),  # the assignee
        ("boris", "manager", True),  # an executor
        ("sam", "manager", True),  # a supervisor
        ("ada", "admin", True),
        ("olga", "owner", True),
        ("carl", "client", False),  # a client who is not the assignee
        ("eve", "manager", False),  # staff outside executors and supervisors
    ],
)
def test_who_may_act(user: str, role: str, allowed: bool) -> None:
    assert (
        may_act(
            user,
            role=role,
            assignee="anna",
            executors=["group:sales"],
            supervisors=["user:sam"],
            users_of=users_of,
        )
        is allowed
    )


def test_transitions_follow_the_workflow_only() -> None:
    kw = {"assignee": "anna", "users_of": users_of}
    check_transition(
        HOMEWORK, current="new", target="in_progress", user_id="anna", comment=None, **kw
    )
    with pytest.raises(Refused, match="no transition from 'new' to 'done'"):
        check_transition(HOMEWORK, current="new", target="done", user_id="anna", comment=None, **kw)
    with pytest.raises(Refused, match="may not move"):
        # the owner role does not bypass the workflow
        check_transition(
            HOMEWORK, current="new", target="in_progress", user_id="olga", comment=None, **kw
        )
    with pytest.raises(Refused, match="comment is required"):
        check_transition(
            HOMEWORK, current="done", target="in_progress", user_id="olga", comment="  ", **kw
        )
    check_transition(
        HOMEWORK, current="done", target="in_progress", user_id="olga", comment="redo task 2", **kw
    )
    with pytest.raises(Refused, match="does not exist"):
        check_transition(
            HOMEWORK, current="done", target="archived", user_id="olga", comment=None, **kw
        )
