"""Forms of the billing admin's intermediate pages."""

from __future__ import annotations

from django import forms

from .models.statements import Payout


class PayoutSettleForm(forms.Form):
    """Mark payouts paid (the reference proves it) or failed (the reason says why)."""

    reference = forms.CharField(
        max_length=100,
        required=False,
        help_text="Bank transfer or check number, or the provider's payout id.",
    )
    reason = forms.CharField(max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, outcome: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.outcome = outcome
        if outcome == Payout.Status.PAID:
            self.fields["reference"].required = True
            del self.fields["reason"]
        else:
            self.fields["reason"].required = True
            self.fields["reason"].help_text = "Why the money did not reach the owner."
