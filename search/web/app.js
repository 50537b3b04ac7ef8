// medsearch web page: plain JavaScript, no build step. Talks to the JSON API of the same server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { results: [], selected: -1, basket: new Map(), filters: [], seq: 0, labelSeq: 0, korean: {},
  images: null };

function token() { return sessionStorage.getItem("medsearch-token") || ""; }

async function askToken() {
  const dialog = $("token-dialog");
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  sessionStorage.setItem("medsearch-token", $("token").value.trim());
}

async function api(path, options = {}, retry = true) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 && retry) {
    await askToken();
    return api(path, options, false);
  }
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function status(text, kind = "") {
  $("status").textContent = text;
  $("status").className = kind;
}

async function thumbnail(img, id, size = 256) {
  try {
    const blob = await (await api(`/api/items/${id}/thumbnail?size=${size}`)).blob();
    img.src = URL.createObjectURL(blob);
  } catch (_) {
    img.alt = "no preview";
  }
}

function whereClause() {
  const quote = (v) => "'" + v.replace(/'/g, "''") + "'";
  const parts = [];
  if ($("f-modality").value.trim()) parts.push(`modality = ${quote($("f-modality").value.trim().toUpperCase())}`);
  if ($("f-body").value.trim()) parts.push(`body_part like ${quote("%" + $("f-body").value.trim() + "%")}`);
  if ($("f-from").value) parts.push(`study_date >= ${quote($("f-from").value)}`);
  if ($("f-to").value) parts.push(`study_date <= ${quote($("f-to").value)}`);
  if ($("f-where").value.trim()) parts.push(`(${$("f-where").value.trim()})`);
  return parts.join(" and ");
}

function card(result, onOpen) {
  const element = document.createElement("div");
  element.className = "card" + (state.basket.has(result.id) ? " in-basket" : "");
  element.dataset.id = result.id;
  const img = document.createElement("img");
  img.alt = `image ${result.id}`;
  thumbnail(img, result.id);
  const score = document.createElement("div");
  score.className = "score";
  const prob = result.probability === undefined ? "" : `  p=${result.probability.toFixed(3)}`;
  score.textContent = `#${result.rank}  ${result.score.toFixed(3)}${prob}`;
  const meta = document.createElement("div");
  meta.className = "meta";
  const m = result.metadata || {};
  meta.textContent = [m.modality, m.body_part, m.study_date, result.path.split("/").pop()].filter(Boolean).join(" · ");
  meta.title = result.path;
  element.append(img, score, meta);
  element.addEventListener("click", onOpen);
  return element;
}

function showResults(results, label) {
  state.results = results;
  state.selected = results.length ? 0 : -1;
  const grid = $("grid");
  grid.replaceChildren(...results.map((r, i) => card(r, () => { select(i); openDetail(); })));
  highlight();
  status(results.length ? t("results", results.length, label) : t("noResults", label));
}

function showSearchedAs(body) {
  const box = $("searched-as");
  const translated = body.searched_as !== undefined && body.searched_as !== body.query;
  const unknown = body.not_understood || [];
  box.hidden = !translated && !unknown.length;
  box.textContent = [translated ? `${t("searchedAs")}: ${body.searched_as}` : "",
    unknown.length ? `${t("notUnderstood")}: ${unknown.join(", ")}` : ""].filter(Boolean).join(" · ");
}

async function run(label, request) {
  const seq = ++state.seq;
  status(t("searching", label), "busy");
  $("searched-as").hidden = true;
  try {
    const body = await (await request()).json();
    if (seq !== state.seq) return;
    showResults(body.results, label);
    showSearchedAs(body);
  } catch (error) {
    if (seq === state.seq) status(error.message, "error");
  }
}

function search(event) {
  event.preventDefault();
  const q = $("q").value.trim();
  if (!q) return;
  $("q").blur(); // the arrow keys now move through the results
  const params = new URLSearchParams({ q, k: "40" });
  const where = state.filters.includes("where") ? whereClause() : "";
  if (where) params.set("where", where);
  run(`“${q}”`, () => api(`/api/search?${params}`));
}

function uploadSimilar(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  run(`images like ${file.name}`, () => api("/api/similar?k=40", { method: "POST", body: form }));
}

function select(index) {
  if (!state.results.length) return;
  state.selected = Math.max(0, Math.min(state.results.length - 1, index));
  highlight();
}

function highlight() {
  [...$("grid").children].forEach((el, i) => el.classList.toggle("selected", i === state.selected));
  const current = $("grid").children[state.selected];
  if (current) current.scrollIntoView({ block: "nearest" });
}

async function showViewerLink(id) {
  $("viewer").hidden = true;
  try {
    const item = await (await api(`/api/items/${id}`)).json();
    if (item.viewer_url && $("detail").dataset.id === String(id)) {
      $("viewer").href = item.viewer_url;
      $("viewer").hidden = false;
    }
  } catch (error) {
    $("viewer").hidden = true;
  }
}

async function openDetail() {
  const result = state.results[state.selected];
  if (!result) return;
  $("detail").hidden = false;
  $("detail").dataset.id = result.id;
  thumbnail($("detail-img"), result.id, 512);
  const rows = Object.entries(Object.assign({ id: result.id, path: result.path }, result.metadata));
  $("detail-meta").replaceChildren(...rows.map(([key, value]) => {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td></td>";
    tr.children[0].textContent = key;
    tr.children[1].textContent = String(value);
    return tr;
  }));
  $("similar").replaceChildren();
  showLabels();
  showViewerLink(result.id);
  try {
    const body = await (await api(`/api/similar/${result.id}?k=7`)).json();
    const others = body.results.filter((r) => r.id !== result.id).slice(0, 6);
    $("similar").replaceChildren(...others.map((r) => card(r, () => showResults(body.results, `similar to #${result.id}`))));
  } catch (error) {
    $("similar").textContent = error.message;
  }
}

async function loadLabelSets() {
  try {
    const body = await (await api("/api/label-sets")).json();
    $("label-set").replaceChildren(...body.label_sets.map((set) => {
      const option = document.createElement("option");
      option.value = set.name;
      option.textContent = set.name;
      option.title = set.description;
      set.labels.forEach((label) => { if (label.korean) state.korean[label.name] = label.korean; });
      return option;
    }));
  } catch (error) {
    $("label-note").textContent = error.message;
  }
}

async function showLabels() {
  const id = Number($("detail").dataset.id);
  const seq = ++state.labelSeq;
  const own = $("label-text").value.trim();
  const request = own ? { ids: [id], labels: own } : { ids: [id], labels_set: $("label-set").value };
  if (!own && !request.labels_set) return;
  $("label-probs").replaceChildren();
  $("label-note").textContent = t("scoring");
  try {
    const response = await api("/api/classify", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request) });
    const body = await response.json();
    if (seq !== state.labelSeq) return;
    const result = body.results[0];
    const rows = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
    $("label-probs").replaceChildren(...rows.map(([name, p]) => labelRow(name, p, result)));
    $("label-note").textContent = (result.needs_review ? t("review") : "") + t("note");
  } catch (error) {
    if (seq === state.labelSeq) $("label-note").textContent = error.message;
  }
}

function labelRow(name, p, result) {
  const tr = document.createElement("tr");
  tr.className = result.present.includes(name) ? "present" : result.uncertain.includes(name) ? "uncertain" : "";
  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = 1;
  meter.value = p;
  const cells = [document.createElement("td"), document.createElement("td"), document.createElement("td")];
  cells[0].textContent = (LANG === "ko" && state.korean[name]) || name.replace(/_/g, " ");
  cells[1].append(meter);
  cells[2].textContent = p.toFixed(3);
  tr.append(...cells);
  return tr;
}

function closeDetail() { $("detail").hidden = true; }

function addToBasket() {
  const shown = $("detail").hidden ? null : $("detail").dataset.id;
  const result = state.results.find((r) => String(r.id) === shown) || state.results[state.selected];
  if (!result) return;
  state.basket.set(result.id, result);
  renderBasket();
}

function renderBasket() {
  $("basket-count").textContent = state.basket.size;
  $("basket-items").textContent = [...state.basket.values()].map((r) => "#" + r.id).join(" ");
  $("export").disabled = $("clear").disabled = state.basket.size === 0;
  [...$("grid").children].forEach((el) => el.classList.toggle("in-basket", state.basket.has(Number(el.dataset.id))));
}

function exportCsv() {
  const columns = ["id", "path", "score", "modality", "body_part", "study_date", "series_description"];
  const cell = (v) => (v === undefined || v === null ? "" : `"${String(v).replace(/"/g, '""')}"`);
  const lines = [columns.join(",")];
  for (const r of state.basket.values()) {
    const m = r.metadata || {};
    lines.push([r.id, r.path, r.score, m.modality, m.body_part, m.study_date, m.series_description].map(cell).join(","));
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
  link.download = "medsearch-cohort.csv";
  document.body.append(link);
  link.click();
  link.remove();
}

function columns() {
  const grid = $("grid");
  return Math.max(1, getComputedStyle(grid).gridTemplateColumns.split(" ").length);
}

function onKey(event) {
  if (event.target.matches("input, textarea, select")) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(), ArrowUp: -columns() };
  if (event.key in moves) { select(state.selected + moves[event.key]); event.preventDefault(); }
  else if (event.key === "Enter") openDetail();
  else if (event.key === "Escape") closeDetail();
  else if (event.key === "b") addToBasket();
  else if (event.key === "/") { $("q").focus(); event.preventDefault(); }
}

function wireDrop() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) uploadSimilar(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", () => { if ($("file").files.length) uploadSimilar($("file").files[0]); });
}

async function start() {
  $("search-form").addEventListener("submit", search);
  $("close").addEventListener("click", closeDetail);
  $("add").addEventListener("click", addToBasket);
  $("export").addEventListener("click", exportCsv);
  $("clear").addEventListener("click", () => { state.basket.clear(); renderBasket(); });
  $("label-set").addEventListener("change", () => { $("label-text").value = ""; showLabels(); });
  $("label-text").addEventListener("change", showLabels);
  document.addEventListener("keydown", onKey);
  $("lang").addEventListener("change", () => applyLanguage($("lang").value));
  document.addEventListener("languagechange", () => {
    if (state.images !== null && !state.results.length) status(t("indexed", state.images));
    if (!$("detail").hidden) showLabels();
  });
  applyLanguage(LANG);
  wireDrop();
  try {
    const info = await (await api("/api/info")).json();
    state.filters = info.server.filters;
    $("filters").hidden = !state.filters.includes("where");
    state.images = info.images;
    status(t("indexed", info.images));
    loadLabelSets();
  } catch (error) {
    status(error.message, "error");
  }
}

start();
