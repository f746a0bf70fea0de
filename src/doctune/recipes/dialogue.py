"""The dialogue recipe (``doctune generate dialogue``): brainstorming dialogues between personas, every claim cited.

:func:`doctune.knowledge.dialogue.build_dialogues` makes the dialogues (strategy from ``generate.strategy``:
``span`` for the embedded small model, ``one_call`` for endpoints and larger models). Each accepted dialogue is one
multi-turn example: a system message naming the assistant persona, then the turns, the assistant persona's as
``assistant`` messages and every other persona's as ``user`` messages "<Persona>: <text>". Consecutive messages
of one role are merged (chat templates need alternation); the conversation ends with the assistant persona's last
turn; a dialogue that the assistant opens gets the user opener "Let us discuss <title>." first. Training computes
the loss on every assistant message, so on the assistant persona's turns only. Group: the document.

For people: ``<workspace>/dialogues/dialogues.md``, every dialogue with its claims and their quotes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from doctune.knowledge.dialogue import Dialogue, build_dialogues
from doctune.knowledge.dialogue_metrics import (
    claim_counts,
    persona_distinctness,
    turns_per_dialogue,
    verified_claim_share,
)
from doctune.recipes.base import GateSpec, Recipe, RecipeOutput
from doctune.records import Chunk, Document, Example

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.config_knowledge import DialogueConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)


class DialogueFields(BaseModel):
    """The typed fields of a dialogue example."""

    model_config = ConfigDict(extra="forbid")

    dialogue_id: str
    doc_id: str
    plan: str
    personas: list[str] = Field(description="The personas that speak (the assistant persona first).")
    assistant_persona: str
    n_turns: int = Field(description="Turns of the dialogue (before the cut after the assistant's last turn).")
    n_claims: int
    verified_claims: int
    topic: str = ""


def speaker_label(name: str) -> str:
    """A persona's name as it prefixes a user message: first letter capitalised."""
    return name[:1].upper() + name[1:]


def dialogue_messages(dialogue: Dialogue, cfg: DialogueConfig) -> list[dict[str, str]]:
    """The chat messages of ``dialogue`` with ``cfg.assistant_persona`` as the assistant (module docstring); empty
    when that persona never speaks."""
    assistant = cfg.assistant_persona
    spoken = [i for i, t in enumerate(dialogue.turns) if t.speaker == assistant]
    if not spoken:
        return []
    description = cfg.personas.get(assistant, "")
    who = f"{assistant} ({description})" if description else assistant
    system = (
        f"You are the {who} in a {dialogue.plan} dialogue about {dialogue.title}. Base every claim on the document."
    )
    messages = [{"role": "system", "content": system}]
    for turn in dialogue.turns[: spoken[-1] + 1]:
        role = "assistant" if turn.speaker == assistant else "user"
        content = turn.text if role == "assistant" else f"{speaker_label(turn.speaker)}: {turn.text}"
        if len(messages) == 1 and role == "assistant":
            messages.append({"role": "user", "content": f"Let us discuss {dialogue.title}."})
        if messages[-1]["role"] == role:
            messages[-1]["content"] += f"\n\n{content}"
        else:
            messages.append({"role": role, "content": content})
    return messages


def dialogues_markdown(dialogues: Sequence[Dialogue], errors: Sequence[Mapping[str, str]], assistant: str) -> str:
    """Every dialogue as readable Markdown: speaker, text, claims with their quotes; removed turns and rejected
    dialogues with their reasons at the end of each and of the file."""
    lines = ["# Dialogues", "", f"{len(dialogues)} dialogues, {len(errors)} rejected. Assistant persona: {assistant}."]
    for d in dialogues:
        lines += ["", f"## {d.title}: {d.plan} ({d.dialogue_id})", ""]
        lines.append(
            f"Personas: {', '.join(d.personas)}. Strategy: {d.strategy}." + (f" Topic: {d.topic}." if d.topic else "")
        )
        for turn in d.turns:
            lines += ["", f"**{speaker_label(turn.speaker)}** ({turn.step}): {turn.text}"]
            for claim in turn.claims:
                mark = "verified" if claim.verified else f"NOT verified: {claim.reason}"
                where = (
                    f"{claim.citation.chunk_id}, chars {claim.citation.char_start}-{claim.citation.char_end}"
                    if claim.citation
                    else "no citation"
                )
                quote = " ".join(claim.citation.quote.split()) if claim.citation else ""
                lines.append(f"> - claim ({mark}): {claim.text}")
                if quote:
                    lines.append(f'>   quote ({where}): "{quote}"')
        if d.removed_turns:
            lines += ["", "Removed turns:"]
            lines += [f"- {t.speaker} ({t.step}): {t.text} [{t.reason}]" for t in d.removed_turns]
    if errors:
        lines += ["", "## Rejected", ""]
        lines += [f"- {e.get('unit_id', '')}: {e.get('reason', '')} {e.get('detail', '')}".rstrip() for e in errors]
    return "\n".join(lines) + "\n"


class DialogueRecipe(Recipe):
    """Multi-turn dialogues between personas about the documents, every claim cited (see the module docstring)."""

    name = "dialogue"
    description = "Brainstorming dialogues between personas, every claim cited; the assistant persona is trained."
    inputs = ("documents", "chunks")
    config_sections = ("dialogue", "models.generator")
    fields_model = DialogueFields
    metrics = ("perplexity",)
    gate = GateSpec(metric="perplexity", split="eval", higher_is_better=False)

    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        from doctune.generate.strategy import resolve_strategy
        from doctune.llm.roles import open_client

        cfg = config.dialogue
        docs = workspace.read_rows("documents", Document, config)
        chunks = workspace.read_rows("chunks", Chunk, config)
        client = open_client(config, workspace, "generator")
        try:
            strategy = resolve_strategy(config.generate.strategy, client.backend)
            dialogues, errors = build_dialogues(
                docs,
                chunks,
                cfg,
                strategy,
                client,
                progress=progress,
                max_concurrency=config.models.generator.max_concurrency,
            )
        finally:
            client.backend.close()
        examples = [ex for d in dialogues if (ex := self.dialogue_example(d, cfg)) is not None]
        out_dir = workspace.root / "dialogues"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "dialogues.md").write_text(
            dialogues_markdown(dialogues, errors, cfg.assistant_persona), encoding="utf-8"
        )
        stats = self.dialogue_stats(dialogues, errors, strategy)
        log.info("dialogue examples: %d from %d dialogues (%d rejected)", len(examples), len(dialogues), len(errors))
        return RecipeOutput(examples=examples, errors=errors, stats=stats)

    def dialogue_example(self, dialogue: Dialogue, cfg: DialogueConfig) -> Example | None:
        """The example of one dialogue (None when the assistant persona never speaks)."""
        messages = dialogue_messages(dialogue, cfg)
        if not messages:
            return None
        verified, total = claim_counts([dialogue])
        fields = DialogueFields(
            dialogue_id=dialogue.dialogue_id,
            doc_id=dialogue.doc_id,
            plan=dialogue.plan,
            personas=dialogue.personas,
            assistant_persona=cfg.assistant_persona,
            n_turns=len(dialogue.turns),
            n_claims=total,
            verified_claims=verified,
            topic=dialogue.topic,
        )
        return self.example(dialogue.dialogue_id, dialogue.doc_id, messages, fields, doc_ids=[dialogue.doc_id])

    @staticmethod
    def dialogue_stats(
        dialogues: Sequence[Dialogue], errors: Sequence[Mapping[str, str]], strategy: str, seed: int = 0
    ) -> dict[str, Any]:
        """Counts and metrics: dialogues, rejected (by reason), turns per dialogue, the share of verified claims in
        kept turns and over every claim made (removed turns and rejected dialogues included), persona
        distinctness, per plan, and where the novice's questions came from."""
        removed = [t for d in dialogues for t in d.removed_turns]
        verified, total = claim_counts(dialogues, removed)
        verified += sum(int(e.get("verified_claims", 0)) for e in errors)
        total += sum(int(e.get("claims", 0)) for e in errors)
        methods = Counter(t.method for d in dialogues for t in d.turns if not t.claims)
        return {
            "strategy": strategy,
            "dialogues": len(dialogues),
            "rejected": len(errors),
            "rejected_by_reason": dict(Counter(e.get("reason", "") for e in errors)),
            "removed_turns": len(removed),
            "turns_per_dialogue": turns_per_dialogue(dialogues),
            "verified_claim_share": verified_claim_share(dialogues),
            "verified_claim_share_all": round(verified / total, 4) if total else 0.0,
            "claims": total,
            "persona_distinctness": persona_distinctness(dialogues, seed),
            "by_plan": dict(Counter(d.plan for d in dialogues)),
            "turns_without_claims_by_method": dict(methods),
        }
