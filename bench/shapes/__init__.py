"""The shapes of load the bench measures, one module each: how ours and
Celery's figure are taken, and how the two take turns so that both see the
same background load."""
