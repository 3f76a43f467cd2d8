"use strict";
// Dashboard: source cards and MQTT state from the SSE "state" messages, events as SSE messages (id = seq).
const MAX_EVENTS = 50;
const cards = new Map();
const seen = new Set();
let liveView = false;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function pill(node, text, kind) {
  node.textContent = text;
  node.classList.remove("ok", "bad", "warn");
  if (kind) node.classList.add(kind);
}

function makeCard(name) {
  const card = el("article", "card");
  card.dataset.source = name;
  const h = el("h3");
  h.append(el("span", "name", name), el("span", "pill state", "…"));
  const stats = el("p", "stats");
  for (const k of ["fps", "processed", "dropped"]) {
    const s = el("span");
    s.append(k + " ", el("b", k, "0"));
    stats.append(s);
  }
  card.append(h, stats);
  if (liveView) {
    const img = el("img", "live");
    img.alt = "live view of " + name;
    const src = "stream/" + encodeURIComponent(name) + ".mjpg";
    img.src = src;
    img.onerror = () => setTimeout(() => { img.src = src + "?t=" + Date.now(); }, 2000);  // server restarted
    card.append(img);
  }
  card.append(el("ul", "faces"));
  document.getElementById("sources").append(card);
  cards.set(name, card);
  return card;
}

function faceItem(f) {
  const li = el("li");
  li.dataset.track = f.track_id;
  li.append(el("span", "dot emo-" + f.emotion), el("span", "", "#" + f.track_id + " " + f.emotion),
            el("span", "note", Math.round(f.score * 100) + "%"));
  return li;
}

function renderSource(s) {
  const card = cards.get(s.name) || makeCard(s.name);
  const state = card.querySelector(".state");
  if (s.paused) pill(state, "paused", "warn");
  else pill(state, s.up ? "up" : "down", s.up ? "ok" : "bad");
  card.querySelector("b.fps").textContent = s.fps.toFixed(1);
  card.querySelector("b.processed").textContent = s.processed;
  card.querySelector("b.dropped").textContent = s.dropped;
  const faces = card.querySelector(".faces");
  faces.replaceChildren(...(s.faces.length ? s.faces.map(faceItem) : [el("li", "note", "no face")]));
}

function renderState(st) {
  document.getElementById("device").textContent = st.device_id;
  liveView = st.live_view;
  st.sources.forEach(renderSource);
  document.getElementById("no-sources").hidden = st.sources.length > 0;
  const m = st.mqtt, node = document.getElementById("mqtt");
  if (!m.enabled) pill(node, "MQTT off", "");
  else pill(node, "MQTT " + (m.connected ? "connected" : "disconnected") + " · outbox " + m.queued,
            m.connected ? "ok" : "bad");
}

function eventItem(ev) {
  const li = el("li");
  li.dataset.seq = ev.seq;
  const when = new Date(ev.ts);
  const t = el("time", "", isNaN(when) ? "" : when.toLocaleTimeString());
  t.dateTime = ev.ts || "";
  t.title = ev.ts || "";
  const what = el("span", "what");
  const emotion = ev.emotion || "–";
  const change = ev.previous_emotion ? ev.previous_emotion + " → " + emotion : emotion;
  what.append(el("span", "dot emo-" + ev.emotion), el("b", "", ev.source + " #" + ev.track_id),
              el("span", "emotion", ev.confidence == null ? change : change + " " + Math.round(ev.confidence * 100) + "%"),
              el("span", "type", ev.type));
  li.append(t, what);
  return li;
}

function addEvent(ev) {
  if (seen.has(ev.seq)) return;
  seen.add(ev.seq);
  const list = document.getElementById("events");
  list.prepend(eventItem(ev));
  while (list.children.length > MAX_EVENTS) {
    seen.delete(Number(list.lastElementChild.dataset.seq));
    list.lastElementChild.remove();
  }
  document.getElementById("no-events").hidden = true;
}

function connect() {
  const link = document.getElementById("link");
  const es = new EventSource("api/events/stream?after=0");
  es.addEventListener("state", (e) => renderState(JSON.parse(e.data)));
  es.onmessage = (e) => addEvent(JSON.parse(e.data));
  es.onopen = () => pill(link, "live", "ok");
  es.onerror = () => pill(link, "reconnecting…", "warn");
}

connect();
