import sys

from jobs.running.command import JobCommand

LINE = "n" * 999  # a line is 1,000 characters with its newline


# print() on purpose: the runner must capture what a careless job prints, not only self.stdout.
class Command(JobCommand):
    help = (
        "Test fixture: print()s --print-lines lines (half to stderr) and --text --text-times times, then "
        "returns a --summary-kb KB summary, or raises with a --error-kb KB message."
    )

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--print-lines", type=int, default=30_000)
        parser.add_argument("--summary-kb", type=int, default=25_000)
        parser.add_argument("--error-kb", type=int, default=0, help="Raise with a message this large instead.")
        parser.add_argument("--text", default="")
        parser.add_argument("--text-times", type=int, default=1)

    def run_job(self, *, now, dry_run, print_lines, summary_kb, error_kb, text, text_times, **options) -> dict:
        # print(), not self.stdout: what a careless job does, and what the runner must capture.
        for i in range(print_lines):
            print(LINE, file=sys.stderr if i % 2 else sys.stdout)
        if text:
            print(text * text_times)
        if error_kb:
            raise RuntimeError(f"{text}{'e' * error_kb * 1000}{text}")
        return {f"item-{i:05d}": "s" * 990 for i in range(summary_kb)}
