"""Readers that turn files of each format into clean text (see ``doctune.stages.ingest``)."""
