"""Local HTTP servers that speak model-provider protocols, for tests and benchmarks.

Each server binds 127.0.0.1 on an ephemeral port, answers from a thread pool
(:class:`http.server.ThreadingHTTPServer`), and stops on ``with`` exit, on :meth:`stop`, or by
itself after ``max_lifetime_s``. Usage::

    from tests.servers.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(latency_s=0.2, script=["500", "hang"], hang_s=2.0) as srv:
        client = AsyncOpenAI(base_url=srv.base_url, api_key="EMPTY")
        ...
        assert srv.stats.calls == 3

Shared options (see :class:`tests.servers.base.FakeServer`):

- ``respond(body) -> str``: the answer text for a request body (default: a deterministic echo).
  If it raises, that call gets an HTTP 500 naming the exception (counted in ``stats.errors``).
- ``latency_s``: a fixed delay before every answer.
- ``script``: actions for the first calls, in arrival order: ``"ok"``, ``"500"``, ``"429"``,
  ``"hang"`` (wait ``hang_s`` before answering, to exceed a client timeout) or
  ``"malformed"`` (HTTP 200 with a body that is not JSON).
- ``fail_rate`` / ``fail_status`` / ``seed``: after the script, fail this fraction of calls with
  ``fail_status`` (500 by default), drawn from a seeded RNG; ``fail_rate=1.0`` fails every call.

Counters live in ``server.stats`` (``calls``, ``ok``, ``errors``, ``hangs``, ``malformed``) and
the last request bodies in ``server.requests``.
"""
