"""The pure interpreter and its data: state, events, commands, context."""

from flowlane.engine.context import Ctx, ObjectProxy, ObjectRecord, World
from flowlane.engine.events import Decision
from flowlane.engine.interpreter import decide
from flowlane.engine.state import InstanceState, Token, from_dict, to_dict

__all__ = [
    "Ctx",
    "Decision",
    "InstanceState",
    "ObjectProxy",
    "ObjectRecord",
    "Token",
    "World",
    "decide",
    "from_dict",
    "to_dict",
]
