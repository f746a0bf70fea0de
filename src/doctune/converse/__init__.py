"""Talking to characters: retrieval, steering, conversations."""
