"""The drain's render shortcuts print what Jinja's own ``Template.render`` prints.

``notifications.jinja`` compiles templates so that a name is looked up with the message's
``Variables`` dict directly, and a drain's batch renders through a ``Renderer`` that reuses one
Context per template. These tests render templates that use every tag that touches the context
(``set``, ``for``, ``macro``, ``call``, ``import``, ``include``, ``autoescape``, blocks) both ways,
in a row, with different variables, so that a value left over from an earlier message, or a
name looked up in the wrong place, fails here.
"""

from __future__ import annotations

import jinja2
import pytest
from markupsafe import Markup

from notifications import jinja as email_jinja

SOURCES = {
    "plain.txt": "Hello {{ name }}, {{ missing_name }}|{{ count }}\n",
    "escaped.html": "<p>{{ name }} & {{ count }} {{ safe }}</p>{% if flag %}<b>{{ name }}</b>{% endif %}",
    "set.html": "{% set greeting = 'Hi ' ~ name %}{{ greeting }} {% set name = 'shadow' %}{{ name }}",
    "loop.txt": "{% for item in items %}{{ loop.index }}:{{ item }}:{{ name }} {% endfor %}{{ item }}",
    "macro.html": (
        "{% macro card(title) %}<h1>{{ title }}</h1>{{ name }}{{ caller() if caller }}{% endmacro %}"
        "{{ card(name) }}{% call card('x') %}[{{ count }}]{% endcall %}"
    ),
    "lib.html": "{% macro shout(v) %}{{ v|upper }}!{% endmacro %}{% set exported = name %}",
    "imports.html": "{% import 'lib.html' as lib with context %}{% from 'lib.html' import shout %}"
    "{{ lib.shout(name) }} {{ shout(count) }} {{ lib.exported }}",
    "include.html": "[{% include 'escaped.html' %}]{% with name = 'inner' %}{% include 'plain.txt' %}{% endwith %}",
    "autoescape.html": "{% autoescape false %}{{ name }}{% endautoescape %}|{{ name }}",
    "filterblock.html": "{% filter upper %}{{ name }} {{ count }}{% endfilter %}",
    "blocks.html": "{% block head %}<title>{{ name }}</title>{% endblock %}{% block body %}{{ count }}{% endblock %}",
    "child.html": "{% extends 'blocks.html' %}{% block body %}child {{ name }} {{ super() }}{% endblock %}",
    "globals.txt": "{{ range(count)|list|length }} {{ _('Run') }}",
}
CONTEXTS = [
    {"name": "Ada & <Lovelace>", "count": 3, "items": ["a", "<b>"], "flag": True, "safe": Markup("<i>ok</i>")},
    {"name": "Grace 'Hopper'", "count": 0, "items": [], "flag": False, "safe": "<i>not safe</i>"},
    {"name": "", "count": 12, "items": ["only"], "flag": "yes", "safe": ""},
]


@pytest.fixture
def env() -> jinja2.Environment:
    return email_jinja.environment(loader=jinja2.DictLoader(SOURCES))


def variables_for(template: jinja2.Template, context: dict) -> email_jinja.Variables:
    variables = email_jinja.Variables(template.globals)
    variables.update(context)
    return variables


def test_every_tag_renders_as_jinja_renders_it(env):
    for name in SOURCES:
        template = env.get_template(name)
        for context in CONTEXTS:
            expected = template.render(**context)  # Jinja's own path: a plain dict, resolve_or_missing
            assert email_jinja.render(template, variables_for(template, context)) == expected, (name, context)


def test_a_batch_renderer_reusing_contexts_prints_each_message_as_if_it_were_alone(env):
    renderer = email_jinja.Renderer()
    templates = [env.get_template(name) for name in SOURCES]
    for _ in range(2):  # the second pass meets contexts the first left behind
        for context in CONTEXTS:
            for template in templates:
                expected = template.render(**context)
                assert renderer(template, variables_for(template, context)) == expected, (template.name, context)


def test_a_render_that_failed_half_way_leaves_nothing_for_the_next_message():
    # It fails inside {% autoescape false %}, which switches the context's eval context; the next
    # message's gettext call reads the eval context to decide whether its markup is trusted.
    source = "{% autoescape false %}{{ 1 // count }}{% endautoescape %}{{ _('<em>%(who)s</em>', who=name) }}"
    template = email_jinja.environment(loader=jinja2.DictLoader({"half.html": source})).get_template("half.html")
    renderer = email_jinja.Renderer()
    with pytest.raises(ZeroDivisionError):
        renderer(template, variables_for(template, {"name": "<a>", "count": 0}))
    rendered = renderer(template, variables_for(template, {"name": "<b>", "count": 1}))
    assert rendered == "1<em>&lt;b&gt;</em>"
    assert rendered == template.render(name="<b>", count=1)


def test_a_missing_name_prints_nothing_and_a_false_value_is_kept(env):
    template = env.get_template("plain.txt")
    variables = variables_for(template, {"name": None, "count": 0})
    assert email_jinja.render(template, variables) == "Hello None, |0\n"
    assert variables["missing_name"] is jinja2.utils.missing
    assert "missing_name" not in variables  # reading a missing name does not add it


def test_the_direct_lookup_is_used_only_where_it_answers_as_resolve_or_missing(env):
    template = env.get_template("plain.txt")
    fresh = email_jinja._new_context(env, template, variables_for(template, {"name": "x"}))
    lookup = email_jinja.resolver(fresh)
    assert lookup == fresh.parent.__getitem__
    assert lookup("name") == "x" and lookup("nope") is jinja2.utils.missing

    fresh.vars["name"] = "assigned"  # as a {% set %} at the top level leaves it
    assert email_jinja.resolver(fresh) == fresh.resolve_or_missing

    plain = email_jinja._new_context(env, template, {"name": "x"})  # a caller's plain dict
    assert email_jinja.resolver(plain) == plain.resolve_or_missing


def test_the_gettext_a_language_group_remembers_translates_as_djangos(env):
    from django.utils import translation

    template = env.from_string(
        "{{ _('Yes') }} {% trans count=n %}{{ n }} hour{% pluralize %}{{ n }} hours{% endtrans %} "
        "{{ ngettext('%(num)d day', '%(num)d days', n) }} {% trans message=n %}m{{ message }}{% endtrans %}"
    )
    for language in ("fr", "de", "en"):
        with translation.override(language):
            gettexts = email_jinja.gettext_for_one_language()
            for n in (1, 2, 1, 5):  # repeated: the second answer comes from the group's memo
                remembered = variables_for(template, {"n": n})
                remembered.update(gettexts)
                expected = template.render(n=n)
                assert email_jinja.render(template, remembered) == expected, (language, n)
    with translation.override("fr"):
        assert template.render(n=2).startswith("Oui 2 hours")  # Django's catalogue, not a msgid
