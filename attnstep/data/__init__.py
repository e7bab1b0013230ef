"""Corpora, dataset downloads, model cards, where checkpoints live, and files written without destroying what a user has."""
