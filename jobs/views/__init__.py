"""Views of the staff dashboard (``dashboard``, ``schedule``) and the HTTP trigger API (``api``)."""
