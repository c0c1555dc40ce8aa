"""Batch runs: a run's requests as batch files, on a provider's batch engine or offline.

``lines`` (request and result lines, ``custom_id``), ``state`` (``batch.json`` and the batch files
in the run folder), ``replay`` (the runner's own item logic driven by batch results), ``engine``
(the Files and Batches APIs through the openai SDK), ``session`` (``run --batch``, ``batch
export``, ``batch import``, ``batch cancel``).
"""
