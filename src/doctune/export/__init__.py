"""Exports of the curated dataset: Hugging Face ``DatasetDict``s, a dataset card, chat and alpaca JSONL.

Three configs (subsets) are exported, each a ``datasets.DatasetDict``:

* ``qa``: the curated items (``DatasetItem``), one split per ``DatasetItem.split`` value
  (``train`` and ``eval`` always exist, possibly empty);
* ``chunks``: split ``train``, one row per ``Chunk``;
* ``raw``: split ``train``, one row per ``Document``.

Columns are derived from the pydantic row models (:func:`doctune.export.hf.features_for`), so a loaded row
equals ``model.model_dump()`` and empty splits keep their schema. ``doctune.export.hf`` saves them with
``save_to_disk`` (loadable with ``datasets.load_from_disk``), writes a ``README.md`` card whose front matter
uses the layout of ``push_to_hub``, writes the JSONL formats and pushes to the Hub through a replaceable client.
"""
