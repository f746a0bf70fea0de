// talk page: a streamed chat, the conversation starter, and a transcript that follows a running conversation.
// Model and user text goes into the page only as text (dt.el / textContent).
"use strict";

// read an NDJSON stream of events: {status}, {piece}, {done}, {error}
async function talkStream(url, body, onEvent) {
  let buffer = "";
  await dt.stream(url, body, (chunk) => {
    buffer += chunk;
    let at;
    while ((at = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, at).trim();
      buffer = buffer.slice(at + 1);
      if (line) onEvent(JSON.parse(line));
    }
  });
  if (buffer.trim()) onEvent(JSON.parse(buffer));
}

function setupChat() {
  const log = document.getElementById("talk-log");
  const input = document.getElementById("talk-input");
  const send = document.getElementById("talk-send");
  const status = document.getElementById("talk-status");
  const character = document.getElementById("talk-character");
  const target = document.getElementById("talk-target");
  let history = [];   // a model chat's turns (the server keeps a character chat's)
  let chatId = null;  // the character chat going on (its log id)
  let busy = false;

  function reset() {
    history = []; chatId = null;
    log.replaceChildren();
    status.textContent = "";
  }
  document.getElementById("talk-reset").addEventListener("click", reset);
  character.addEventListener("change", reset);
  target.addEventListener("change", reset);

  async function say() {
    const message = input.value.trim();
    if (!message || busy) return;
    busy = true; send.disabled = true;
    input.value = "";
    const who = character.value || (target.value || "model");
    log.append(dt.el("div", {class: "msg user"}, dt.el("span", {class: "who"}, "you"), dt.el("span", {class: "text"}, message)));
    const text = dt.el("span", {class: "text reply-text"});
    const meta = dt.el("div", {class: "meta"});
    const bubble = dt.el("div", {class: "msg reply pending"}, dt.el("span", {class: "who"}, who), text, meta);
    log.append(bubble);
    const body = {
      target: target.value, character: character.value || null, chat: chatId, messages: history, message,
      settings: {
        rag: document.getElementById("talk-rag").checked,
        bias: document.getElementById("talk-bias").checked,
        max_tokens: parseInt(document.getElementById("talk-max-tokens").value, 10) || 256,
      },
    };
    status.textContent = "…";
    try {
      await talkStream("/api/talk/chat", body, (ev) => {
        if (ev.status) status.textContent = ev.status;
        if (ev.piece) { text.append(document.createTextNode(ev.piece)); status.textContent = "replying"; }
        if (ev.error) { bubble.classList.add("error"); text.textContent = ev.error; }
        if (ev.done) {
          const d = ev.done;
          text.textContent = d.reply;  // what was kept (and logged): the reply cleaned of other speakers' lines
          if (d.chat) chatId = d.chat;
          if (!d.character) history.push({role: "user", content: message}, {role: "assistant", content: d.reply});
          if (d.character) {
            meta.append(`adapter ${d.adapter || "none: base + card"} · rag ${d.settings.rag ? "on" : "off"} · bias ${d.settings.bias ? "on" : "off"}`);
            if (d.boosted_used && d.boosted_used.length) meta.append(` · boosted: ${d.boosted_used.join(", ")}`);
            if (d.sources && d.sources.length) meta.append(dt.el("div", {class: "mono"}, `sources: ${d.sources.join("; ")}`));
            meta.append(" · log ", dt.el("a", {href: `/talk/conversations/${encodeURIComponent(d.log)}`}, d.log));
          }
        }
      });
      status.textContent = "";
    } catch (e) {
      bubble.classList.add("error");
      text.textContent = e.message;
      status.textContent = "";
    } finally {
      bubble.classList.remove("pending");
      bubble.classList.add("finished");
      busy = false; send.disabled = false;
      input.focus();
    }
  }
  send.addEventListener("click", say);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); say(); }
  });
}

function setupStarter() {
  const go = document.getElementById("start-go");
  if (!go) return;
  go.addEventListener("click", async () => {
    const value = (id) => document.getElementById(id).value;
    const scenario = value("start-scenario");
    const body = {
      characters: scenario ? [] : [...document.querySelectorAll(".start-character")].map((s) => s.value).filter(Boolean),
      scenario: scenario || null,
      topic: value("start-topic"),
      turns: parseInt(value("start-turns"), 10) || null,
      seed: value("start-seed") === "" ? null : parseInt(value("start-seed"), 10),
      policy: value("start-policy"),
      rag: document.getElementById("start-rag").checked,
      bias: document.getElementById("start-bias").checked,
      base: document.getElementById("start-base").checked,
    };
    go.disabled = true;
    try {
      const reply = await dt.post("/api/talk/conversations", body);
      window.location.href = reply.url;
    } catch (e) {
      dt.flash(e.message, "error");
      go.disabled = false;
    }
  });
  for (const row of document.querySelectorAll("tr.row-link")) {
    row.addEventListener("click", (e) => { if (e.target.tagName !== "A") window.location.href = row.dataset.href; });
  }
}

function turnBlock(t) {
  const meta = dt.el("div", {class: "turn-meta"});
  for (const [k, v] of t.meta) meta.append(dt.el("span", {class: "kv"}, dt.el("span", {class: "k"}, k), " ", v));
  if (t.boosted_used.length) meta.append(dt.el("span", {class: "kv"}, dt.el("span", {class: "k"}, "boosted used"), " ", t.boosted_used.join(", ")));
  if (t.sources.length) {
    meta.append(dt.el("div", {class: "sources"}, dt.el("span", {class: "k"}, "sources"),
      dt.el("ul", {}, ...t.sources.map((s) => dt.el("li", {class: "mono"}, s)))));
  }
  return dt.el("div", {class: "msg turn" + (t.user ? " user" : ""), "data-turn": t.turn},
    dt.el("span", {class: "who"}, t.speaker), dt.el("span", {class: "text"}, t.text), meta);
}

function setupTranscript() {
  const head = document.getElementById("transcript-head");
  if (!head) return;
  const list = document.getElementById("transcript");
  let n = parseInt(head.dataset.turns, 10) || 0;
  let state = head.dataset.state;
  if (state !== "running") return;
  const timer = setInterval(async () => {
    let reply;
    try { reply = await dt.getJSON(`/api/talk/conversations/${encodeURIComponent(head.dataset.id)}/turns?after=${n}`); }
    catch (e) { return; }
    if (reply.turns.length) document.getElementById("transcript-empty")?.remove();
    for (const t of reply.turns) {
      const moves = [...t.came.map((c) => `Enter ${c}.`), ...t.left.map((c) => `Exit ${c}.`)];
      if (moves.length) list.append(dt.el("div", {class: "stage-direction muted"}, `(${moves.join(" ")})`));
      list.append(turnBlock(t));
    }
    n = reply.total;
    head.dataset.turns = n;
    state = reply.state;
    head.dataset.state = state;
    document.getElementById("transcript-state").textContent = state;
    document.getElementById("transcript-stop").textContent = reply.stop || "";
    document.getElementById("transcript-error").textContent = reply.error || "";
    if (state !== "running") clearInterval(timer);
  }, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.getElementById("talk-log")) setupChat();
  setupStarter();
  setupTranscript();
});
