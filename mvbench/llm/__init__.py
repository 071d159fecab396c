"""LLM clients (OpenAI-compatible, Gemini), the persistent response cache and image helpers."""
