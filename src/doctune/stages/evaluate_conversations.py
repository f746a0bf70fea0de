"""eval conversations: the conversation benchmark. Each scenario is run once per setting, one switch at a time.

Settings: the **reference** (each character's adapter, retrieval on, logit bias on, the configured student), then one
switch each: **no adapters** (the base model and the card), **rag off**, **bias off**, and **large student** (the
reference on ``converse.compare_student``'s base and adapters; reported as not run, with the reason, when it is not
set or a character has no adapter on it). One session is opened per base model; the switches flip
``session.use_adapters`` / ``rag`` / ``bias`` between conversations, nothing is reloaded.

Every conversation runs to its scenario's turns (no stop on a repeated reply, so settings compare over the same
turns) with a fixed seed per scenario (``converse.seed + 1000 * position``, the same in every setting), replies of
at most ``converse.bench_max_tokens`` tokens, and is logged under ``conversations/`` (kind ``benchmark``). Metrics:
:mod:`doctune.evaluate.conversations`; the judge's in-character share only when a judge passed its check on the
character dataset's held-out examples. Writes ``reports/conversations.json``, ``reports/conversations.html`` and the
plots under ``reports/conversations/``.

Scenarios: ``converse.scenarios_dir`` (``*.yaml``), else the packaged ones (``doctune/data/scenarios``);
``converse.bench_scenarios`` picks some by name.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from doctune.config import ConfigError, DoctuneConfig
from doctune.converse.scenario import Scenario, load_scenario
from doctune.evaluate.conversations import METRICS, aggregate, classifier_space, conversation_metrics, generated_turns
from doctune.stages import StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)

SEED_STEP = 1000


@dataclass
class Setting:
    """One benchmark setting: the session switches and, for a switch, what it changes."""

    name: str
    component: str = ""  # what the switch measures ("retrieval"); "" for the reference
    removes: bool = True  # the switch turns a component off (else it brings one in: a larger student)
    adapters: bool = True
    rag: bool = True
    bias: bool = True
    base_model: str | None = None
    description: str = ""
    run: bool = True
    reason: str = ""
    models: dict[str, str | None] = field(default_factory=dict)


def benchmark_scenarios(scenarios_dir: str | None, names: list[str] | None = None) -> list[tuple[str, Scenario]]:
    """(name, scenario) for each ``*.yaml`` of ``scenarios_dir`` (default: the packaged ones), by name; ``names``
    keeps those (an unknown name is a ConfigError listing the known ones)."""
    found: list[tuple[str, Scenario]] = []
    if scenarios_dir:
        folder = Path(scenarios_dir)
        if not folder.is_dir():
            raise ConfigError(f"converse.scenarios_dir {scenarios_dir!r} is not a folder")
        found = [(p.stem, load_scenario(p)) for p in sorted(folder.glob("*.yaml"))]
    else:
        packaged = files("doctune.data").joinpath("scenarios")
        for item in sorted(packaged.iterdir(), key=lambda t: t.name):
            if item.name.endswith(".yaml"):
                with as_file(item) as path:
                    found.append((item.name.removesuffix(".yaml"), load_scenario(path)))
    if not found:
        raise ConfigError(f"no scenario (*.yaml) in {scenarios_dir or 'the packaged scenarios'}")
    if names:
        known = {n for n, _ in found}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"unknown scenario(s) {', '.join(unknown)}: there are {', '.join(sorted(known))}")
        found = [(n, s) for n, s in found if n in names]
    return found


def characters_without_adapters(workspace: Workspace, base_model: str, characters: list[str]) -> list[str]:
    """The ``characters`` that have no registered character adapter on ``base_model``."""
    from doctune.evaluate.recipe_eval import latest_entries
    from doctune.recipes import get_recipe
    from doctune.registry import Registry

    entries = latest_entries(Registry(workspace).list_entries(), get_recipe("character"))
    have = {e.labels.get("character", "").upper() for e in entries if e.base_model == base_model}
    return [c for c in characters if c not in have]


def plan_settings(config: DoctuneConfig, workspace: Workspace, characters: list[str]) -> list[Setting]:
    """The reference and the four switches, each with whether it runs and why not."""
    from doctune.train.resolve import student_base

    small = student_base(config)
    large = config.converse.compare_student
    settings = [
        Setting("reference", base_model=small, description="adapters, retrieval and logit bias on"),
        Setting("no adapters", "the adapters", adapters=False, base_model=small, description="base model + card"),
        Setting("rag off", "retrieval", rag=False, base_model=small, description="no retrieved passages"),
        Setting("bias off", "logit bias", bias=False, base_model=small, description="no boosted/suppressed words"),
        Setting(
            "large student",
            "the large student",
            removes=False,
            base_model=large,
            description="reference on a larger base",
        ),
    ]
    big = settings[-1]
    if not large:
        big.run, big.reason = False, "converse.compare_student is not set (e.g. gemma3-270m)"
    elif large == small:
        big.run, big.reason = False, f"converse.compare_student is the student itself ({small})"
    else:
        missing = characters_without_adapters(workspace, large, characters)
        if missing:
            big.run = False
            big.reason = (
                f"no adapter on {large} for {', '.join(missing)} (doctune train --recipe character "
                f"--set train.base_model={large})"
            )
    return settings


def _open_judge(config: DoctuneConfig, workspace: Workspace) -> tuple[Any, dict[str, Any]]:
    """The judge if it passes its in-character check on the character dataset's held-out examples, else None."""
    from doctune.evaluate.in_character import open_checked_judge
    from doctune.recipes import get_recipe
    from doctune.records import Example

    try:
        recipe = get_recipe("character", config)
        examples = workspace.read_rows(f"dataset_{recipe.name}", Example, config)
    except Exception as exc:  # no dataset: no examples with known answers to check a judge on
        return None, {"passed": False, "reason": f"no held-out character examples to check a judge on ({exc})"}
    return open_checked_judge(config, workspace, examples, recipe.gate.split)


class _Bench:
    """Runs and scores the conversations of one benchmark (the classifier per set of characters is cached)."""

    def __init__(self, config: DoctuneConfig, workspace: Workspace, judge: Any):
        self.config = config
        self.workspace = workspace
        self.judge = judge
        self._classifiers: dict[frozenset[str], Any] = {}

    def classifier(self, session: Any, characters: list[str]) -> Any:
        from doctune.evaluate.attribution import train_speaker_classifier

        key = frozenset(characters)
        if key not in self._classifiers:
            self._classifiers[key] = train_speaker_classifier(session.speeches, characters, self.config.evaluate.seed)
        return self._classifiers[key]

    def verdicts(self, session: Any, turns: list[Any], prompts: list[tuple[str, list[dict[str, str]]]]) -> list:
        from doctune.evaluate.in_character import judge_reply_in_character

        out: list[bool | None] = []
        for turn, (_speaker, messages) in zip(generated_turns(turns), prompts, strict=False):
            card = session.cards.get(turn.speaker, "")  # the card alone: retrieved passages are not the judge's
            context = next((m["content"] for m in messages if m["role"] == "user"), "")
            try:
                out.append(judge_reply_in_character(self.judge, card, context, turn.text))
            except Exception as exc:  # a failed call is a turn not judged in character
                log.warning("judge failed on a %s turn: %s", turn.speaker, exc)
                out.append(None)
        return out

    def conversation(self, session: Any, setting: Setting, name: str, scenario: Scenario, seed: int) -> dict:
        from doctune.converse.conversation import ConversationRunner, ConversationSettings
        from doctune.converse.log import ConversationLog

        cfg = self.config.converse
        scenario = scenario.model_copy(deep=True)
        policy = scenario.policy or cfg.policy
        settings = ConversationSettings(
            policy=policy,
            max_turns=scenario.turns or cfg.max_turns,
            context_turns=cfg.context_turns,
            stop_on_repeat=False,
            seed=seed,
        )
        header = {
            "characters": scenario.characters,
            "scenario": scenario.model_dump(mode="json"),
            "scenario_name": name,
            "setting": setting.name,
            "settings": {**session.settings(), "policy": policy, "max_turns": settings.max_turns},
            "seed": seed,
            "base_model": session.voices.base_label,
            "models": {c: session.voices.adapter_for(c) if setting.adapters else None for c in scenario.characters},
        }
        log_ = ConversationLog(self.workspace.root, "benchmark", header)
        runner = ConversationRunner(
            scenario,
            session.speak,
            session.cards,
            settings,
            log_,
            retrieve=session.retrieve,
            chooser=session.voices.choose_next if policy == "natural" else None,
            turn_settings=session.settings(),
        )
        start = time.perf_counter()
        turns = runner.run()
        seconds = time.perf_counter() - start
        classifier = self.classifier(session, scenario.characters)
        real = {c: [s.text for s in session.speeches if s.speaker == c] for c in scenario.characters}
        verdicts = self.verdicts(session, turns, runner.prompts) if self.judge is not None else None
        values, details = conversation_metrics(
            turns, runner.order, policy, classifier.predict, real, classifier_space(classifier), verdicts
        )
        return {
            "setting": setting.name,
            "scenario": name,
            "seed": seed,
            "log": log_.id,
            "seconds": round(seconds, 2),
            "stop": runner.stop_reason,
            "metrics": values,
            "details": details,
            "judge_verdicts": verdicts,
            "turns": [
                {
                    "speaker": t.speaker,
                    "text": t.text,
                    "why": t.why,
                    "adapter": t.adapter,
                    "boosted_used": t.boosted_used,
                }
                for t in turns
            ],
        }


def run(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """Run the benchmark (see the module docstring) and write its reports."""
    from doctune.converse import session as session_mod
    from doctune.evaluate.conversation_report import conversations_markdown, write_conversations_html, write_plots
    from doctune.evaluate.writers import write_json
    from doctune.progress import progress_bar

    started = time.perf_counter()
    cfg = config.converse
    if cfg.bench_max_tokens:
        config = config.model_copy(update={"converse": cfg.model_copy(update={"max_tokens": cfg.bench_max_tokens})})
        cfg = config.converse
    scenarios = benchmark_scenarios(cfg.scenarios_dir, cfg.bench_scenarios)
    characters = list(dict.fromkeys(c for _, s in scenarios for c in s.characters))
    settings = plan_settings(config, workspace, characters)
    for s in settings:
        if not s.run:
            log.warning("conversation benchmark: %s not run: %s", s.name, s.reason)
    judge, check = _open_judge(config, workspace)
    bench = _Bench(config, workspace, judge)
    seeds = {name: cfg.seed + SEED_STEP * i for i, (name, _) in enumerate(scenarios)}
    conversations: list[dict] = []
    total = len(scenarios) * sum(s.run for s in settings)
    try:
        with progress_bar(total=total, desc="conversations", unit="conv", disable=not progress) as bar:
            session, session_base = None, None
            for setting in (s for s in settings if s.run):
                if session is None or setting.base_model != session_base:
                    session = None  # the previous base model is let go before the next one loads
                    try:
                        session = session_mod.open_session(config, workspace, characters, base_model=setting.base_model)
                    except Exception as exc:
                        if setting.name == "reference":
                            raise
                        log.warning("conversation benchmark: %s not run: %s", setting.name, exc)
                        setting.run, setting.reason = False, f"{setting.base_model} cannot be opened: {exc}"
                        bar.total -= len(scenarios)
                        continue
                    session_base = setting.base_model
                session.use_adapters, session.rag, session.bias = setting.adapters, setting.rag, setting.bias
                setting.models = {c: session.voices.adapter_for(c) if setting.adapters else None for c in characters}
                setting.base_model = session.voices.base_label
                for name, scenario in scenarios:
                    bar.set_postfix_str(f"{setting.name}: {name}")
                    conversations.append(bench.conversation(session, setting, name, scenario, seeds[name]))
                    bar.update(1)
    finally:
        if judge is not None:
            judge.backend.close()
    ev = config.evaluate
    metrics = [m for m in METRICS if m != "judge" or judge is not None]
    per_setting, switches = aggregate(
        conversations, [vars(s) for s in settings], metrics, ev.n_resamples, ev.confidence, ev.seed
    )
    seconds = time.perf_counter() - started
    report: dict[str, Any] = {
        "benchmark": "conversations",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "confidence": config.evaluate.confidence,
        "n_resamples": config.evaluate.n_resamples,
        "generation": {
            k: getattr(cfg, k)
            for k in (
                "max_tokens",
                "temperature",
                "top_p",
                "repetition_penalty",
                "context_turns",
                "boost_words",
                "boost_bias",
                "rag_own",
                "rag_scene",
            )
        },
        "metrics": {
            m: {"label": v.label, "higher_is_better": v.higher_is_better, "description": v.description}
            for m, v in METRICS.items()
        },
        "scenarios": [
            {
                "name": n,
                "title": s.title,
                "characters": s.characters,
                "policy": s.policy or cfg.policy,
                "turns": s.turns or cfg.max_turns,
                "seed": seeds[n],
                "events": len(s.events),
            }
            for n, s in scenarios
        ],
        "attribution_chance": sum(1 / len(s.characters) for _, s in scenarios) / len(scenarios),
        "settings": [vars(s) for s in settings],
        "per_setting": per_setting,
        "switches": switches,
        "judge": {
            "scored": judge is not None,
            "judge": check.get("judge"),
            "check": check,
            "reason": check.get("reason", "")
            if judge is not None
            else f"no judge passed its check ({check.get('reason', 'no check ran')})",
        },
        "timing": {
            "seconds": round(seconds, 1),
            "per_conversation_s": round(sum(c["seconds"] for c in conversations) / len(conversations), 2)
            if conversations
            else None,
        },
        "conversations": conversations,
    }
    reports = workspace.root / "reports"
    plots = write_plots(report, reports / "conversations")
    outputs = {
        "report": str(write_json(report, reports / "conversations.json")),
        "html": str(write_conversations_html(report, reports / "conversations.html", plots)),
        **{f"plot_{k}": str(v) for k, v in plots.items()},
    }
    return StageResult(
        stage="eval conversations",
        outputs=outputs,
        counts={
            "scenarios": len(scenarios),
            "conversations": len(conversations),
            "turns": sum(len(c["turns"]) for c in conversations),
        },
        stats={"markdown": conversations_markdown(report), "seconds": round(seconds, 1), "switches": switches},
    )
