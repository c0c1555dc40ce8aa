"""Coding exams graded by running the model's code.

``extract`` (the program in a reply) → ``execute`` (worker threads) → ``sandbox`` (one limited,
isolated process per program; ``_child`` runs inside it) → ``grade`` (points and status from the
verdicts) → ``passk`` / ``scores`` (pass@k, per-problem pass rates) → ``views`` (report, HTML,
compare). Import the module you need: the views never load the sandbox.
"""
