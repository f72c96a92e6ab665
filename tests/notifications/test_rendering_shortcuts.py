"""The drain's shortcuts build exactly what the libraries' constructors build.

``notifications.jinja`` makes a template's Context without Context.__init__, and
``rendering.Sender.message`` makes the EmailMultiAlternatives without its __init__ (both to
save the drain CPU per message). Jinja2 and Django are pinned; these tests are what fails
when an upgrade adds or changes an attribute, instead of a message going out wrong.
"""

from __future__ import annotations

import html
import json
import re
from uuid import uuid4

import pytest
from django.core.mail import EmailMultiAlternatives
from markupsafe import Markup

from notifications import jinja as email_jinja
from notifications import mailer, rendering
from notifications.mailer import Claimed


def _state(obj) -> dict:
    state = dict(vars(obj))
    if "eval_ctx" in state:
        state["eval_ctx"] = vars(state["eval_ctx"])
    return state


def test_a_shortcut_context_is_the_context_jinja_would_build():
    env = rendering._engine()
    variables = {"name": "Ada"}
    for source, name in (("<b>{{ name }}</b>", "emails/probe/body.html"), ("{{ name }}", "emails/probe/body.txt")):
        template = env.from_string(source)
        template.name = name
        built = env.context_class(env, variables, template.name, template.blocks)
        shortcut = email_jinja._new_context(env, template, variables)
        assert type(shortcut) is type(built)
        assert _state(shortcut) == _state(built)
        assert shortcut.eval_ctx.autoescape is name.endswith(".html")


def test_a_shortcut_context_keeps_a_templates_blocks():
    env = rendering._engine()
    template = env.from_string("{% block greeting %}Hi {{ name }}{% endblock %}")
    built = env.context_class(env, {}, template.name, template.blocks)
    shortcut = email_jinja._new_context(env, template, {})
    assert _state(shortcut) == _state(built) and shortcut.blocks["greeting"]
    assert email_jinja.render(template, {**template.globals, "name": "Ada"}) == "Hi Ada"


def test_the_shortcut_escape_is_djangos_escape():
    samples = [
        '<a href="x">Tom & Jerry\'s</a> &amp; é',
        "plain words",
        "",
        "&#34; &#39; already entities",
        "'\"'\"<<>>&&",
        "ünïcödé ‘quotes’ “double” \U0001f600 <b>",
    ]
    for sample in samples:
        assert email_jinja.escape_html(sample) == html.escape(sample), sample
        assert email_jinja._escape_str_python(sample) == email_jinja._escape_str(sample), sample
    assert email_jinja.escape_html(Markup("<b>safe</b>")) == "<b>safe</b>"
    assert email_jinja.escape_html(42) == "42" and email_jinja.escape_html(-7) == "-7"
    assert email_jinja.escape_html(True) == "True" and email_jinja.escape_html(None) == "None"


def test_the_claims_json_decoding_is_json_loads():
    for text in ('{"a": 1}', '{"big": 123456789012345678901234567890, "f": 1.5e-7, "s": "\\u00e9\\n"}', "[]", '"x"'):
        assert mailer._json_decode(text) == json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        mailer._json_decode('{"a": 1} trailing')


def test_a_shortcut_message_is_the_message_djangos_constructor_builds(settings):
    sender = rendering.Sender.from_settings()
    notification = Claimed(7, str(uuid4()), "tenant@example.com", "notifications/test_message", "", 1, {})
    for parts in (("Subject", "Text", "<p>HTML</p>"), ("Subject", "Text", None), ("Subject", "", None)):
        subject, text, html_part = parts
        built = EmailMultiAlternatives(
            subject=subject,
            body=text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[notification.recipient],
            headers={"Message-ID": f"<{notification.uuid}@{settings.NOTIFICATIONS_MESSAGE_ID_DOMAIN}>"},
            connection=None,
        )
        if html_part is not None:
            built.attach_alternative(html_part, "text/html")
        shortcut = sender.message(notification, parts)
        assert type(shortcut) is EmailMultiAlternatives
        assert vars(shortcut) == vars(built)
        # What goes on the wire is the same too (but for the Date and the MIME boundary, which
        # every call makes anew).
        assert _wire(shortcut) == _wire(built)


def _wire(message: EmailMultiAlternatives) -> bytes:
    raw = message.message().as_bytes()
    raw = re.sub(rb"^Date: .*$", b"Date: -", raw, flags=re.M)
    for boundary in set(re.findall(rb'boundary="([^"]+)"', raw)):
        raw = raw.replace(boundary, b"BOUNDARY")
    return raw


def test_two_shortcut_messages_share_no_list():
    sender = rendering.Sender.from_settings()
    one, two = (
        sender.message(Claimed(i, str(uuid4()), f"t{i}@example.com", "x", "", 1, {}), ("s", "t", "<p>h</p>"))
        for i in (1, 2)
    )
    one.cc.append("audit@example.com")
    one.attach_alternative("extra", "text/x-extra")
    assert two.cc == [] and len(two.alternatives) == 1
