"""The detection service: REST API, job store, workers (local or Celery), auth and metrics.

Nothing in :mod:`antifake`'s core imports this package; it is a shell around
:class:`antifake.engine.Engine`. Entry points: :func:`antifake.service.api.create_app`,
``antifake serve`` / ``antifake worker`` / ``antifake keys`` (:mod:`antifake.service.cli`).
"""
