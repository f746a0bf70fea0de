// doctune workbench: small helpers shared by every page (no framework, no build step).
// Text from items, models and users is only ever put into the page with textContent, never as HTML.
"use strict";
const dt = (() => {
  const csrf = () => document.querySelector('meta[name="doctune-csrf"]').content;
  const headers = (extra) => Object.assign({"Content-Type": "application/json", "X-Doctune-CSRF": csrf()}, extra || {});

  // POST JSON to a write route; resolves to the parsed JSON reply, rejects with the server's message
  async function post(url, body) {
    const reply = await fetch(url, {method: "POST", headers: headers(), body: JSON.stringify(body || {}),
                                    credentials: "same-origin"});
    const text = await reply.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = {detail: text}; }
    if (!reply.ok) throw new Error((data && (data.detail || data.error)) || reply.statusText);
    return data;
  }

  // POST and read a streamed text reply chunk by chunk: onChunk(text) for each piece; resolves at the end
  async function stream(url, body, onChunk) {
    const reply = await fetch(url, {method: "POST", headers: headers(), body: JSON.stringify(body || {}),
                                    credentials: "same-origin"});
    if (!reply.ok) throw new Error(await reply.text());
    const reader = reply.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      onChunk(decoder.decode(value, {stream: true}));
    }
  }

  async function getJSON(url) {
    const reply = await fetch(url, {credentials: "same-origin"});
    if (!reply.ok) throw new Error(await reply.text());
    return reply.json();
  }

  // make an element: el("td", {class: "x"}, "text", child...) -- strings become text nodes, never HTML
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
    return node;
  }

  function flash(message, kind) {
    let box = document.getElementById("flash");
    if (!box) { box = el("div", {id: "flash"}); document.body.append(box); }
    box.className = kind || "info";
    box.textContent = message;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.className = "hidden"; }, 4000);
  }

  return {post, stream, getJSON, el, flash};
})();
