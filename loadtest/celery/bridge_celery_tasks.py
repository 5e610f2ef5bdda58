"""The Celery side of the peer baseline (scripts/bench): the same trivial job as the fleet's tiny
job, a 16-byte passthrough, with Redis as broker and result backend (Debian's python3-celery)."""
import os

from celery import Celery

REDIS = os.environ.get("BRIDGE_CELERY_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("bridge_celery_tasks", broker=REDIS, backend=REDIS)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                worker_prefetch_multiplier=4, task_acks_late=False, result_expires=60,
                broker_connection_retry_on_startup=True)


@app.task
def passthrough(payload):
    return payload
