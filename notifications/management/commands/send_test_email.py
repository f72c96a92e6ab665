from django.core.management.base import BaseCommand

from notifications.services import notification_enqueue


class Command(BaseCommand):
    help = "Queue a test e-mail (template notifications/test_message); process-notifications sends it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("recipient")
        parser.add_argument("--label", default="", help="A line of text to include.")
        parser.add_argument("--language", default=None)

    def handle(self, *args, recipient, label, language, **options) -> None:
        notification = notification_enqueue(
            recipient=recipient, template="notifications/test_message", context={"label": label}, language=language
        )
        self.stdout.write(self.style.SUCCESS(f"Queued notification #{notification.pk} to {recipient}."))
