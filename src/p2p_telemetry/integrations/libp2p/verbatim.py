"""py-libp2p methods whose bodies the pubsub hooks run themselves, checked against the installed code.

py-libp2p calls ``Pubsub._is_subscribed_to_msg``, ``_is_msg_seen`` and ``notify_subscriptions`` for
every message. Wrapping each costs a Python call on top of the method, and the message's topics are
decoded anew at each reading of ``msg.topicIDs`` (upb builds the list each time). So the hooks
replace these three methods and run their bodies themselves, reading the topics once and counting as
they go. That is right only while the bodies are the ones below: ``same_code`` compares the method a
pubsub would call with its copy here (syntax trees, without docstrings and annotations), and the hook
of a method that differs (another py-libp2p, a subclass, a method someone else replaced) wraps the
method instead.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from functools import cache
from typing import Any

__all__ = ["BODIES", "same_code"]

#: The py-libp2p methods the hooks run themselves, as py-libp2p 0.8 writes them.
BODIES: dict[str, str] = {
    "_is_subscribed_to_msg": """
        def _is_subscribed_to_msg(self, msg):
            return any(topic in self.topic_ids for topic in msg.topicIDs)
    """,
    "_is_msg_seen": """
        def _is_msg_seen(self, msg):
            msg_id = self._msg_id_constructor(msg)
            return self.seen_messages.has(msg_id)
    """,
    "notify_subscriptions": """
        def notify_subscriptions(self, publish_message):
            for topic in publish_message.topicIDs:
                if topic in self.topic_ids:
                    try:
                        self.subscribed_topics_send[topic].send_nowait(publish_message)
                    except trio.WouldBlock:
                        logger.warning(
                            "fail to deliver message to subscription for topic %s", topic
                        )
    """,
}


def same_code(obj: Any, name: str) -> bool:
    """True when ``obj.name`` is the class's own method and its code is ``BODIES[name]``."""
    if name in getattr(obj, "__dict__", {}):
        return False  # replaced on the instance: not the code below
    method = getattr(type(obj), name, None)
    return method is not None and _matches(method, name)


@cache
def _matches(function: Any, name: str) -> bool:
    try:
        installed = _shape(inspect.getsource(function))
    except (OSError, TypeError, SyntaxError):  # no source (a frozen or compiled install): wrap
        return False
    return installed == _shape(BODIES[name])


def _shape(source: str) -> str:
    """The syntax tree of a function's source, without docstring, annotations and decorators."""
    function = ast.parse(textwrap.dedent(source)).body[0]
    if not isinstance(function, ast.FunctionDef):
        return ""
    function.decorator_list, function.returns = [], None
    for argument in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs):
        argument.annotation = None
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        function.body = body[1:]
    return ast.dump(function)
