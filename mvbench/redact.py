"""Keep API keys out of every error text, log line and file: one :func:`redact` applied at the source.

A server error body may echo the request's credentials (a proxy that prints the ``Authorization``
header, a misconfigured gateway). That text travels into exception messages, then into
``predictions.jsonl``, ``results.json``, generation outputs and stderr. So the places where such
text is made mask it: :class:`mvbench.errors.ServerError` redacts its message, and
:class:`RedactingFilter` (installed on the CLI's log handler) redacts every log record.

What is masked: every value registered with :func:`register_secret` (the clients register the
keys they were configured with) and the current values of the usual key variables
(:data:`SECRET_ENV_VARS`). Values shorter than :data:`MIN_SECRET_LEN` are ignored: ``"EMPTY"``
(the placeholder key for local servers) is not a secret, and masking short strings would mangle
ordinary text.

Endpoints can carry credentials too (``https://user:pass@host/v1``, ``...?api-key=...``):
:func:`safe_url` is the form of a URL that may be written anywhere (userinfo, query and fragment
dropped), and :func:`register_url_secrets` registers the credential parts of a configured URL so
that a server echoing them is masked as well. The clients do both for their ``base_url``.

>>> register_secret("sk-test-0123456789")
>>> redact("401: bad key sk-test-0123456789 (Bearer sk-test-0123456789)")
'401: bad key [REDACTED] (Bearer [REDACTED])'
"""

from __future__ import annotations

import logging
import os
import threading
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

SECRET_ENV_VARS = ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "HF_TOKEN",
                   "HUGGING_FACE_HUB_TOKEN", "ANTHROPIC_API_KEY")
MIN_SECRET_LEN = 8
MASK = "[REDACTED]"

_lock = threading.Lock()
_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every later :func:`redact` call (ignored when None or too short)."""
    if value and len(value) >= MIN_SECRET_LEN:
        with _lock:
            _registered.add(value)


def safe_url(url: str | None) -> str | None:
    """``url`` without userinfo, query or fragment: the form that may go into a file, log or message.

    >>> safe_url("https://user:s3cret-pass@proxy.example.com:8443/v1?api-key=abc123456789#x")
    'https://proxy.example.com:8443/v1'
    >>> safe_url("http://127.0.0.1:8000/v1")
    'http://127.0.0.1:8000/v1'
    """
    if url is None:
        return None
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not a URL we can take apart: write nothing of it
        return "<unparseable url>"
    if not parts.scheme and not host:
        return redact(str(url).split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1])
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def register_url_secrets(url: str | None) -> None:
    """Register the password, user name and query values of ``url`` as secrets (see :func:`register_secret`)."""
    if not url:
        return
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return
    register_secret(unquote(parts.password or ""))
    register_secret(parts.password)
    register_secret(unquote(parts.username or ""))
    for _, value in parse_qsl(parts.query, keep_blank_values=False):
        register_secret(value)


def secrets() -> list[str]:
    """The values currently masked: registered ones plus the key variables set now, longest first."""
    with _lock:
        values = set(_registered)
    values.update(v for v in (os.environ.get(name) for name in SECRET_ENV_VARS)
                  if v and len(v) >= MIN_SECRET_LEN)
    return sorted(values, key=len, reverse=True)  # a key containing another is masked whole


def redact(text: object) -> str:
    """``text`` (stringified) with every secret replaced by :data:`MASK`.

    Args:
        text: any value; non-strings are converted with ``str``.

    Returns:
        The masked text.
    """
    out = text if isinstance(text, str) else str(text)
    for secret in secrets():
        if secret in out:
            out = out.replace(secret, MASK)
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in a record's final message (args merged in).

    Attach it to a handler (not a logger) so that records of every library pass through it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logged as is
            return True
        masked = redact(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # the traceback text is formatted later from the exception: mask it now
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
