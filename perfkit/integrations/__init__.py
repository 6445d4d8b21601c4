"""Drop-in instrumentation: ASGI and WSGI middleware around a Monitor's recorder."""

from perfkit.integrations.asgi import PerfkitASGIMiddleware
from perfkit.integrations.wsgi import PerfkitWSGIMiddleware

__all__ = ["PerfkitASGIMiddleware", "PerfkitWSGIMiddleware"]
