"""attnstep: a stepping debugger for attention seq2seq translation models."""

__version__ = "0.1.0"
