"""Test doubles that ship with doctune: a scripted OpenAI-compatible server for fault injection and
benchmarks (loopback only). The in-process fake model is ``doctune.llm.fake``."""
