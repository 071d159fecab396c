"""Backends that answer generation requests: OpenAI-compatible, vLLM, Gemini, in-process HF."""
