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
- ``script``: actions for the first calls, in arrival order: ``"ok"``, ``"500"``, ``"503"``,
  ``"429"``, ``"hang"`` (wait ``hang_s`` before answering, to exceed a client timeout),
  ``"malformed"`` (HTTP 200 with a body that is not JSON), ``"empty"`` (HTTP 200 without answer
  text) or ``"echo_auth"`` (HTTP 500 whose body repeats the request's credentials).
- ``fault_headers``: headers on injected 429/503 replies (``{"Retry-After": "7"}``); the Gemini
  server's ``retry_delay="7s"`` puts a ``google.rpc.RetryInfo`` in the error body.
- ``action_for(body) -> action | None``: the action of one particular request (fail it every time).
- ``hold()`` / ``release(drop=True)``: park new calls unanswered, then drop them (kill -9 tests).
- Batch endpoints (OpenAI files + batches; Gemini batch mode + resumable upload): jobs advance
  per poll and finish as scripted (``batch_polls``, ``batch_gate``, ``batch_outcomes``:
  ``complete`` / ``expire`` / ``fail``); single lines fail through ``script`` / ``fail_rate``.
- ``fail_rate`` / ``fail_status`` / ``seed``: after the script, fail this fraction of calls with
  ``fail_status`` (500 by default), drawn from a seeded RNG; ``fail_rate=1.0`` fails every call.

Counters live in ``server.stats`` (``calls``, ``ok``, ``errors``, ``hangs``, ``malformed``,
``dropped``, ``batch_creates``, ``batch_lines_ok``, ``file_uploads``; ``ok_by_body`` counts
successful answers per request body, so ``stats.repeated()`` is the number of repeated paid calls)
and the last request bodies in ``server.requests``.
"""
