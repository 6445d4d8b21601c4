"""Drop-in instrumentation: ASGI and WSGI middleware around a Monitor's recorder."""

from perfkit.integrations._asgi import PerfkitASGIMiddleware
from perfkit.integrations._wsgi import PerfkitWSGIMiddleware

__all__ = ["PerfkitASGIMiddleware", "PerfkitWSGIMiddleware"]
