"""doctune: turn a body of text into a fine-tuned language model whose gain you can measure."""

__version__ = "0.1.0"
