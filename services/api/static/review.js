// The review page: one item at a time from /v1/review/next, one control per schema label.
// User content is only ever set as text (textContent), never as HTML.
"use strict";
(() => {
  const KEY_STORE = "parrotwatch.reviewerKey";
  const $ = (id) => document.getElementById(id);
  let schema = null;
  let item = null;
  let busy = false;

  const show = (id, visible) => { $(id).hidden = !visible; };

  function say(text, ok) {
    $("message").textContent = text || "";
    $("message").className = ok ? "ok" : "";
    show("message", Boolean(text));
  }

  function detailOf(body, status) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    return `The server answered ${status}.`;
  }

  async function api(method, path, body) {
    const headers = { "X-Reviewer-Key": sessionStorage.getItem(KEY_STORE) || "" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (res.status === 401) {
      sessionStorage.removeItem(KEY_STORE);
      askKey(detailOf(data, res.status));
      throw new Error("unauthorized");
    }
    return { status: res.status, ok: res.ok, data };
  }

  function askKey(why) {
    show("item", false);
    show("empty", false);
    show("forget-key", false);
    show("key-form", true);
    say(why || "");
    $("key").focus();
  }

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  function choice(label, value, text) {
    const id = `l-${label.key}-${value}`;
    const wrap = el("label", null, { for: id });
    const input = el("input", null, { type: "radio", name: label.key, id, value: String(value) });
    wrap.append(input, ` ${text}`);
    return wrap;
  }

  function buildControls() {
    const box = $("labels");
    box.replaceChildren();
    for (const label of schema.labels) {
      const set = el("fieldset", null, { "data-key": label.key, "data-kind": label.kind });
      const legend = el("legend", label.question);
      if (!label.required) legend.append(" (optional)");
      set.append(legend);
      if (label.kind === "boolean") {
        const sc = label.shortcut;
        set.append(choice(label, "true", sc ? `yes [${sc}]` : "yes"),
                   choice(label, "false", sc ? `no [Shift+${sc}]` : "no"));
      } else {
        for (let v = label.min; v <= label.max; v += 1) set.append(choice(label, v, String(v)));
      }
      box.append(set);
    }
    $("comment").maxLength = schema.comment.max_chars;
    $("keys-hint").textContent = "Keys: a label's letter = yes, Shift+letter = no, digits = " +
      "the first unanswered scale, Enter = submit (Ctrl+Enter in the comment), s = skip " +
      "(outside the comment box).";
  }

  function render(next) {
    item = next;
    $("meta").textContent = `item ${next.item_id} · ${next.model} · ${next.app} · ` +
      `${next.event_time} · request ${next.request_id}`;
    $("prompt").textContent = next.prompt;
    $("response").textContent = next.response;
    const sources = $("sources");
    sources.replaceChildren(...(next.sources || []).map((s) => el("li",
      typeof s === "object" && s !== null ? `${s.id ? `[${s.id}] ` : ""}${s.text ?? ""}` : s)));
    show("sources-section", sources.childElementCount > 0);
    const scores = $("scores");
    scores.replaceChildren();
    for (const [name, value] of Object.entries(next.scores || {})) {
      scores.append(el("dt", name), el("dd", value === null ? "n/a" : value));
    }
    show("scores-section", next.scores !== undefined);
    $("label-form").reset();
    progress(next.progress);
    show("item", true);
    show("empty", false);
  }

  function progress(p) {
    $("progress").textContent = p
      ? `You labelled ${p.labelled_by_you} · ${p.remaining_for_you} left for you` : "";
  }

  async function loadNext() {
    const res = await api("GET", "/v1/review/next");
    if (res.status === 204) {
      item = null;
      show("item", false);
      show("empty", true);
      $("progress").textContent = "Queue done";
      return;
    }
    if (!res.ok) throw new Error(detailOf(res.data, res.status));
    render(res.data);
  }

  async function start() {
    show("key-form", false);
    show("forget-key", true);
    try {
      if (!schema) {
        const res = await api("GET", "/v1/review/schema");
        if (!res.ok) throw new Error(detailOf(res.data, res.status));
        schema = res.data;
        buildControls();
      }
      await loadNext();
    } catch (err) {
      if (err.message !== "unauthorized") say(err.message);
    }
  }

  function collect() {
    const labels = {};
    for (const label of schema.labels) {
      const picked = document.querySelector(`input[name="${label.key}"]:checked`);
      if (!picked) continue; // the server names what is missing
      labels[label.key] = label.kind === "boolean" ? picked.value === "true"
        : Number.parseInt(picked.value, 10);
    }
    const comment = $("comment").value;
    return comment.trim() ? { labels, comment } : { labels };
  }

  async function act(method, path, body, done) {
    if (!item || busy) return;
    busy = true;
    try {
      const res = await api(method, path, body);
      if (res.ok) {
        say(done, true);
        await loadNext();
      } else if (res.status === 404 || res.status === 409) {
        say(detailOf(res.data, res.status)); // this item is gone for us: move on
        await loadNext();
      } else {
        say(detailOf(res.data, res.status));
      }
    } catch (err) {
      if (err.message !== "unauthorized") say(err.message);
    } finally {
      busy = false;
    }
  }

  const submit = () => act("POST", `/v1/review/items/${item && item.item_id}/labels`, collect(),
                           `Item ${item && item.item_id} labelled.`);
  const skip = () => act("POST", `/v1/review/items/${item && item.item_id}/skip`, undefined,
                         `Item ${item && item.item_id} skipped.`);

  function pick(key, value) {
    const input = document.querySelector(`input[name="${key}"][value="${value}"]`);
    if (input) input.checked = true;
  }

  function onKey(event) {
    if (!schema || !item || $("item").hidden || event.altKey) return;
    const target = event.target;
    const key = event.key;
    if (target.id === "comment" && key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit();
      return;
    }
    if (event.ctrlKey || event.metaKey) return;
    if (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "radio")) {
      return; // typing
    }
    if (key === "Enter" && target.tagName !== "BUTTON") { // a focused button acts on its own
      event.preventDefault();
      submit();
      return;
    }
    if (key === "s" && !event.shiftKey) {
      event.preventDefault();
      skip();
      return;
    }
    const letter = key.length === 1 ? key.toLowerCase() : "";
    const yesNo = schema.labels.find((l) => l.kind === "boolean" && l.shortcut === letter);
    if (yesNo) {
      event.preventDefault();
      pick(yesNo.key, event.shiftKey ? "false" : "true");
      return;
    }
    if (/^[0-9]$/.test(key)) {
      const scales = schema.labels.filter((l) => l.kind === "scale");
      const open = scales.find((l) => !document.querySelector(`input[name="${l.key}"]:checked`));
      const scale = open || scales[0];
      if (scale) {
        event.preventDefault();
        pick(scale.key, key);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY_STORE, $("key").value.trim());
      $("key").value = "";
      say("");
      start();
    });
    $("label-form").addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    $("skip").addEventListener("click", skip);
    $("reload").addEventListener("click", () => {
      say("");
      loadNext().catch((err) => { if (err.message !== "unauthorized") say(err.message); });
    });
    $("forget-key").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      schema = null;
      item = null;
      progress(null);
      askKey("");
    });
    document.addEventListener("keydown", onKey);
    if (sessionStorage.getItem(KEY_STORE)) start(); else askKey("");
  });
})();
