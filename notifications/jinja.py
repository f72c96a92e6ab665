"""The Jinja2 environment e-mails render with: the ``emails`` engine in ``settings.TEMPLATES``.

E-mails are Jinja2 rather than Django templates because rendering them was the notification
drain's bottleneck: Django's engine took ~125-165 us for the three parts of a message, Jinja2,
which compiles a template to Python code, a fraction of that (bench/README.md, notification
drain). The templates keep saying what they said under Django's engine:

* autoescaping is on for ``.html`` parts and off for ``.txt`` (plain text must not say ``&amp;``);
* ``{{ _("Run") }}`` and ``{% trans %}Job {{ job_name }} failed{% endtrans %}`` go through
  Django's gettext, so they follow ``translation.override()`` and have the msgids that
  ``{% translate %}`` / ``{% blocktranslate %}`` had (one catalogue for both engines);
* a float prints as Django prints it, with the active language's decimal separator;
* a missing variable prints as nothing (``jinja2.Undefined``, even with DEBUG on, where
  Django's backend would pick ``DebugUndefined``), and a template's last newline is kept;
* ``absolute_url("admin:jobs_jobrun_change", run_id)`` builds a link to a named URL from
  SITE_URL (a path without a name is ``{{ site_url }}/path/``: a variable costs a message far
  less than a call), and ``pluralize`` is Django's filter.

One difference: the ``join`` filter escapes quotes as ``&#34;`` / ``&#39;`` where Django wrote
``&quot;`` / ``&#x27;`` (the same characters to a mail client).
"""

from __future__ import annotations

import jinja2
from django.conf import settings
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import translation
from django.utils.formats import number_format
from jinja2.compiler import CodeGenerator
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.utils import missing
from markupsafe import Markup, escape


def absolute_url(view_name: str, *args) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(view_name, args=args)


class LocalizedFloat(float):
    """A float that prints with the active language's decimal separator, as Django prints one.

    Wrapping the context's floats once per message costs less than a ``finalize`` hook, which
    Jinja calls on every printed value (measured: 40 % of an HTML body's render time), and
    unlike a pre-formatted string it still compares and adds as a number.
    """

    __slots__ = ()

    def __str__(self) -> str:
        return number_format(float(self))


def localize_floats(values: dict, *, into: dict) -> None:
    """Copy the floats of ``values`` into ``into`` wrapped (JSON contexts hold no Decimal or date)."""
    for name, value in values.items():
        if type(value) is float:
            into[name] = LocalizedFloat(value)


def escape_html(value: object) -> str:
    # A plain string is escaped as Django's escape (html.escape) escapes it, without markupsafe's
    # Markup per value, which the join of the output only unwraps (measured: 0.58 -> 0.30 us a
    # value, ten values in a typical body). The scan is markupsafe's C one (~0.06 us against
    # html.escape's five str.replace calls, ~0.25 us, a tenth of a drained message's
    # rendering), then the two quotes it writes as &#34; / &#39; are written as Django writes
    # them (after escaping, "&#3" can only come from a quote). Markup (already safe), numbers and
    # the rest take markupsafe's escape.
    if type(value) is str:
        escaped = _escape_str(value)
        if "&#3" in escaped:
            escaped = escaped.replace("&#34;", "&quot;").replace("&#39;", "&#x27;")
        return escaped
    if type(value) is int:  # digits and a sign: nothing to escape, and no Markup to build
        return str(value)
    return escape(value)


def _escape_str_python(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


try:  # markupsafe's C speedups (the wheels ship them); its pure-Python build lacks them
    from markupsafe._speedups import _escape_inner as _escape_str
except ImportError:  # pragma: no cover
    _escape_str = _escape_str_python


# Jinja's own "newstyle" gettext, calling Django's (which follows the active language). The
# parameters are positional-only: {% trans %} passes its variables by name, and a template's
# `{% trans count=n %}` or `message=` must not collide with them.
@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str, /, **variables) -> str:
    return _interpolate(context, translation.gettext(message), variables)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int, /, **variables) -> str:
    return _interpolate(context, translation.ngettext(singular, plural, n), {"num": n, **variables})


def gettext_for_one_language() -> dict:
    """The templates' ``_`` / ``gettext`` / ``ngettext`` for messages rendered while one language
    stays active (a drain renders a batch's messages language by language, each group inside one
    ``translation.override``): each message id is translated once, then read from a dict.

    Django's gettext cost ~10 us a call here (the active translation read from asgiref's Local,
    then the catalogue chain), three calls a message for the shipped test message. Use a fresh
    one for every language switch; outside such a group the globals above are the right ones.
    """
    singular: dict[str, str] = {}
    plural: dict[tuple[str, str, int], str] = {}

    @jinja2.pass_context
    def gettext(context: jinja2.runtime.Context, message: str, /, **variables) -> str:
        translated = singular.get(message)
        if translated is None:
            translated = singular[message] = translation.gettext(message)
        return _interpolate(context, translated, variables)

    @jinja2.pass_context
    def ngettext(context: jinja2.runtime.Context, singular_id: str, plural_id: str, n: int, /, **variables) -> str:
        key = (singular_id, plural_id, n)
        translated = plural.get(key)
        if translated is None:
            translated = plural[key] = translation.ngettext(singular_id, plural_id, n)
        return _interpolate(context, translated, {"num": n, **variables})

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


def _interpolate(context: jinja2.runtime.Context, translated: str, variables: dict) -> str:
    if context.eval_ctx.autoescape:  # the translation is trusted, its variables are not
        return Markup(translated % {name: escape_html(value) for name, value in variables.items()})
    return translated % variables


def _is_html(template_name: str | None) -> bool:
    return (template_name or "").endswith(".html")


class _CodeGenerator(CodeGenerator):
    def write_commons(self) -> None:
        # Every render and block function starts with Jinja's preamble, then rebinds two names:
        # ``resolve`` (one call per template variable, ~20 a message) to the C lookup of
        # resolver() below where that gives the same answer, and ``escape_html`` to a local.
        super().write_commons()
        self.writeline("resolve = environment.resolver(context)")
        self.writeline("escape_html = environment.escape_html")

    # The hook Jinja's own NativeCodeGenerator overrides to change how a value is printed.
    def _output_child_pre(self, node, frame, finalize) -> None:
        if frame.eval_ctx.autoescape and not frame.eval_ctx.volatile and finalize.src is None:
            self.write("escape_html(")
        else:
            super()._output_child_pre(node, frame, finalize)


class Variables(dict):
    """A message's template variables: a dict that answers Jinja's ``missing`` for a name it lacks.

    With it, a template's generated code looks a name up with the dict's own C ``__getitem__``
    (~90 ns) instead of ``Context.resolve_or_missing`` (~180 ns: a Python call and three dict
    operations). Everywhere else it is an ordinary dict.
    """

    __slots__ = ()

    def __missing__(self, name: str):
        return missing


def resolver(context: Context):
    """The ``resolve`` a render or block function binds on entry: ``context.resolve_or_missing``,
    or the same lookup done by the parent's ``__getitem__`` when the context's own variables are
    empty (a fresh render) and its parent is a Variables. A name the template itself assigns
    (``{% set %}``, imports, macros) is a local of the generated code, never resolved later, so
    that the variables filling up during the render does not change any answer.
    """
    if type(context.parent) is Variables and not context.vars:
        return context.parent.__getitem__
    return context.resolve_or_missing


class _Environment(jinja2.Environment):
    code_generator_class = _CodeGenerator
    escape_html = staticmethod(escape_html)
    resolver = staticmethod(resolver)

    def make_globals(self, d: dict | None) -> dict:
        # A plain dict where Jinja builds a ChainMap over the environment's globals: every render
        # copies a template's globals into its context, and copying the ChainMap was a third of
        # the render time (profiled). Sound because environment() below sets every global
        # before the first template loads.
        return {**self.globals, **(d or {})}


def environment(**options) -> jinja2.Environment:
    options.update(
        autoescape=_is_html,
        undefined=jinja2.Undefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env = _Environment(**options)
    env.newstyle_gettext = True
    env.globals.update(_=_gettext, gettext=_gettext, ngettext=_ngettext, absolute_url=absolute_url)
    env.filters["pluralize"] = pluralize
    return env


def render(template: jinja2.Template, variables: dict) -> str:
    """``template.render(variables)`` for a ``variables`` that already holds the globals.

    ``Template.render`` copies its arguments and then the globals into a new context on every
    call; a message renders three templates from one dict (``{**template.globals, ...}``), so
    it is built once. This is the body of ``render`` without the copies (jinja2 is pinned).
    """
    return _run(template, _new_context(template.environment, template, variables))


def _run(template: jinja2.Template, context: Context) -> str:
    try:
        return "".join(template.root_render_func(context))
    except Exception:
        return template.environment.handle_exception()


class Renderer:
    """``render`` for many messages in a row on one thread (a drain's batch): each template's
    Context is built once and reused while a render leaves it as it found it.

    A render of a template without blocks changes its Context only through ``{% set %}``-like
    tags at the top level (``vars``, ``exported_vars``), an ``{% extends %}`` (``blocks``) and
    ``{% autoescape %}`` (the eval context, which is reset on every use). A Context a render left
    anything in is replaced by a new one. Three Contexts a message cost ~4 us; reusing them,
    ~0.3.
    """

    __slots__ = ("_contexts",)

    def __init__(self) -> None:
        self._contexts: dict[jinja2.Template, Context] = {}

    def __call__(self, template: jinja2.Template, variables: dict) -> str:
        context = self._contexts.get(template)
        if context is None or context.vars or context.exported_vars or context.blocks:
            context = _new_context(template.environment, template, variables)
            if not template.blocks:
                self._contexts[template] = context
        else:
            context.parent = variables
            eval_ctx = context.eval_ctx
            eval_ctx.autoescape = _autoescapes(template)
            eval_ctx.volatile = False
        return _run(template, context)


_new = object.__new__


def _new_context(env: jinja2.Environment, template: jinja2.Template, variables: dict) -> Context:
    """``env.context_class(env, variables, template.name, template.blocks)``, the same object.

    Context.__init__ and EvalContext.__init__ decide per call what is fixed per template (the
    autoescape callable's answer, an empty globals set): three contexts a message cost ~2 us
    that way, ~0.7 this way. tests/notifications/test_rendering_shortcuts.py compares the two objects
    attribute by attribute, so a Jinja2 release that adds one fails there (jinja2 is pinned).
    """
    if env.context_class is not Context:
        return env.context_class(env, variables, template.name, template.blocks)
    eval_ctx = _new(EvalContext)
    eval_ctx.environment = env
    eval_ctx.autoescape = _autoescapes(template)
    eval_ctx.volatile = False
    context = _new(Context)
    context.parent = variables
    context.vars = {}
    context.environment = env
    context.eval_ctx = eval_ctx
    context.exported_vars = set()
    context.name = template.name
    context.globals_keys = set()
    context.blocks = {name: [block] for name, block in template.blocks.items()} if template.blocks else {}
    return context


def _autoescapes(template: jinja2.Template) -> bool:
    try:
        return template._cronhouse_autoescape
    except AttributeError:
        autoescape = template.environment.autoescape
        template._cronhouse_autoescape = autoescape(template.name) if callable(autoescape) else autoescape
        return template._cronhouse_autoescape
