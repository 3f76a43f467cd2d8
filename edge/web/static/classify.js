"use strict";
// Upload page: the chosen file goes as the body of POST api/classify; the answer is drawn below.
const MAX_BYTES = 10 * 1024 * 1024;
const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function showError(msg) {
  $("error").textContent = msg;
  $("error").hidden = false;
  $("result").hidden = true;
  $("status").textContent = "";
}

function faceCard(face, i) {
  const card = el("article", "card face");
  const h = el("h3");
  h.append(el("span", "", "Face " + (i + 1)), el("span", "emotion", face.emotion));
  const bars = el("ul", "bars");
  for (const [name, p] of Object.entries(face.scores).sort((a, b) => b[1] - a[1])) {
    const li = el("li");
    li.dataset.emotion = name;
    const track = el("span", "track"), fill = el("span", "fill emo-" + name);
    fill.style.display = "block";
    fill.style.width = (p * 100).toFixed(1) + "%";
    track.append(fill);
    li.append(el("span", "", name), track, el("span", "num", Math.round(p * 100) + "%"));
    bars.append(li);
  }
  card.append(h, bars);
  return card;
}

function showResult(r) {
  $("result-img").src = r.image;
  $("faces").replaceChildren(...r.faces.map(faceCard));
  $("status").textContent = r.faces.length ? r.faces.length + " face(s) found in " + r.width + "×" + r.height
                                             : "No face found in this photo.";
  $("result").hidden = false;
}

async function upload(file) {
  $("error").hidden = true;
  if (file.size > MAX_BYTES) return showError("File too large: " + (file.size / 1e6).toFixed(1) + " MB (limit 10 MB).");
  $("status").textContent = "Analysing…";
  try {
    const resp = await fetch("api/classify", {method: "POST", body: file,
                                              headers: {"Content-Type": file.type || "application/octet-stream"}});
    const body = await resp.json().catch(() => ({error: "unexpected answer (HTTP " + resp.status + ")"}));
    if (!resp.ok) return showError(body.error || "HTTP " + resp.status);
    showResult(body);
  } catch (e) {
    showError("Upload failed: " + e.message);
  }
}

$("file").addEventListener("change", (e) => { if (e.target.files.length) upload(e.target.files[0]); });
