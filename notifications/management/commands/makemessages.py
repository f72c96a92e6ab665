"""Django's ``makemessages``, which also collects the strings of the Jinja2 e-mail templates.

Django reads ``.html`` and ``.txt`` files as Django templates and would miss Jinja's
``{% trans %}`` blocks, so ``templates/emails/`` is left out of that pass and read by the
``emails`` engine's own i18n extractor (``Environment.extract_translations``) instead; its
strings join the same ``django.pot`` before Django merges it into each language's ``.po``:

    manage.py makemessages -l de       # then translate locale/de/LC_MESSAGES/django.po
    manage.py compilemessages
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands import makemessages
from django.template import engines

from notifications.email.rendering import ENGINE

EMAIL_TEMPLATES = "templates/emails"
POT_HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    lines = escaped.split("\n")
    if len(lines) == 1:
        return f'"{escaped}"'
    parts = [line + "\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return '""\n' + "\n".join(f'"{part}"' for part in parts)


def email_template_entries(root: Path) -> str:
    """The msgids of every e-mail template under ``root``, as .pot entries with their places."""
    environment = engines[ENGINE].env
    entries = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in (".txt", ".html"):
            continue
        place = path.relative_to(settings.BASE_DIR)
        for line, _function, message in environment.extract_translations(path.read_text(encoding="utf-8")):
            singular, plural = (message, None) if isinstance(message, str) else (message[0], message[1])
            if not singular:
                continue
            # Jinja formats every translation with %: msgfmt then checks a translation keeps the names.
            flags = "#, python-format\n" if "%" in singular else ""
            entry = f"#: {place}:{line}\n{flags}msgid {_quoted(singular)}\n"
            if plural:
                entry += f'msgid_plural {_quoted(plural)}\nmsgstr[0] ""\nmsgstr[1] ""\n'
            else:
                entry += 'msgstr ""\n'
            entries.append(entry)
    return "\n".join(entries)


class Command(makemessages.Command):
    help = makemessages.Command.help + " E-mail templates (Jinja2, templates/emails/) included."

    def handle(self, *args, **options):
        options["ignore_patterns"] = [*options.get("ignore_patterns", []), EMAIL_TEMPLATES]
        return super().handle(*args, **options)

    def build_potfiles(self):
        potfiles = super().build_potfiles()
        if self.domain != "django":
            return potfiles
        potfile = os.path.join(self.default_locale_path, f"{self.domain}.pot")
        entries = email_template_entries(Path(settings.BASE_DIR) / EMAIL_TEMPLATES)
        if not os.path.exists(potfile):
            Path(potfile).write_text(POT_HEADER, encoding="utf-8")
        with open(potfile, "a", encoding="utf-8") as pot:
            pot.write("\n" + entries)
        # The same string in several templates is one entry, with every place it is used.
        merged = subprocess.run(["msguniq", "--to-code=utf-8", potfile], capture_output=True, text=True, check=False)
        if merged.returncode != 0:
            raise CommandError(f"msguniq failed on {potfile}:\n{merged.stderr}")
        Path(potfile).write_text(merged.stdout, encoding="utf-8")
        return potfiles if potfile in potfiles else [*potfiles, potfile]
