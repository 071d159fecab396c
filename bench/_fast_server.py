"""A lean asyncio HTTP/1.1 server for throughput benches: fixed latency, canned protocol replies.

The fake servers of ``tests/servers`` parse every body, hash it (to count repeated paid calls) and
inject faults, in stdlib threads: that is right for tests, but on a 2-core machine their CPU
competes with the client being measured. This server only reads each request (headers and
``Content-Length`` body, keep-alive), waits ``latency_s`` on its event loop and answers with a
valid reply of the protocol the path names: an OpenAI chat completion (``/chat/completions``) or
a Gemini ``generateContent`` response (``:generateContent``). ``GET .../models`` lists one model.
"""

from __future__ import annotations

import asyncio
import json

ANSWER = "The hook dissects tissue."


def _openai_reply(answer: str) -> bytes:
    return json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 100, "completion_tokens": 8, "total_tokens": 108}},
                      allow_nan=False).encode()


def _gemini_reply(answer: str) -> bytes:
    return json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": answer}]},
                                       "finishReason": "STOP", "index": 0}],
                       "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 8,
                                         "totalTokenCount": 108}}, allow_nan=False).encode()


_MODELS = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}, allow_nan=False).encode()


def _reply(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: keep-alive\r\n\r\n").encode() + body


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency_s: float,
                  counter: list[int], replies: tuple[bytes, bytes]) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            method, path = lines[0].split(b" ")[:2]
            length = 0
            for line in lines[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if method == b"GET":
                writer.write(_reply("200 OK", _MODELS))
                continue
            await asyncio.sleep(latency_s)
            counter[0] += 1
            writer.write(_reply("200 OK", replies[1] if b"generateContent" in path else replies[0]))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(latency_s: float, conn, stop, answer: str = ANSWER) -> None:
    """Run in a child process: send the base URL through ``conn``, serve until ``stop``, send the call count.

    Every completion's text is ``answer``."""
    replies = (_openai_reply(answer), _gemini_reply(answer))

    async def main() -> None:
        counter = [0]
        server = await asyncio.start_server(lambda r, w: _handle(r, w, latency_s, counter, replies), "127.0.0.1", 0,
                                            backlog=1024)
        port = server.sockets[0].getsockname()[1]
        conn.send(f"http://127.0.0.1:{port}")
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        server.close()
        conn.send(counter[0])

    asyncio.run(main())
