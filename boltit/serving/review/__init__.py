"""The ``/review`` page: queues of tickets for subject-matter experts to confirm or correct."""
