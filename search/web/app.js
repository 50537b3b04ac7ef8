// medsearch web page: plain ES modules, no build step, talking to the JSON API of the same server. This
// module runs searches (text, or an uploaded image), pages through them, keeps them in the URL and
// handles the keys; filters.js, cards.js, detail.js (with viewer.js and labels.js) and basket.js do the rest.

import { $, api, json } from "./api.js";
import { basket, exportCsv, moreLikeThese, probeSummary, renderBasket, showSplits } from "./basket.js";
import { card } from "./cards.js";
import { closeDetail, openDetail, relabelDetail, wireDetail } from "./detail.js";
import { loadLabelSets, showLabels } from "./labels.js";
import { fromParams, loadFacets, relabel, toParams, whereClause } from "./filters.js";
import { asCard, unit, withUnit } from "./units.js";

const PAGE = 40;
const state = { results: [], selected: -1, seq: 0, images: null, filters: [], query: "", request: null,
  reference: null };

function status(text, kind = "") {
  $("status").textContent = text;
  $("status").className = kind;
}

function showResults(results, label, append = false) {
  state.results = append ? state.results.concat(results) : results;
  if (!append) state.selected = results.length ? 0 : -1;
  const start = append ? state.results.length - results.length : 0;
  const cards = results.map((r, i) => card(r, () => { select(start + i); open(); }, basket.has(r.id)));
  if (append) $("grid").append(...cards); else $("grid").replaceChildren(...cards);
  highlight();
  const n = state.results.length;
  status(n ? t("results", n, label) : t("noResults", label));
}

function showSearchedAs(body) {
  const box = $("searched-as");
  const translated = body.searched_as !== undefined && body.searched_as !== body.query;
  const unknown = body.not_understood || [];
  box.hidden = !translated && !unknown.length;
  box.textContent = [translated ? `${t("searchedAs")}: ${body.searched_as}` : "",
    unknown.length ? `${t("notUnderstood")}: ${unknown.join(", ")}` : ""].filter(Boolean).join(" · ");
}

/** Run ``request(offset)`` (a promise of a response); ``offset`` > 0 appends the next page. */
async function run(label, request, offset = 0) {
  const seq = ++state.seq;
  state.request = { label, request };
  status(t("searching", label), "busy");
  $("more").hidden = true;
  if (!offset) { $("searched-as").hidden = true; closeDetail(); }
  try {
    const body = await (await request(offset)).json();
    if (seq !== state.seq) return;
    showResults(body.results.map(asCard), label, offset > 0);
    if (!offset) showSearchedAs(body);
    $("more").hidden = body.results.length < PAGE;
  } catch (error) {
    if (seq === state.seq) status(error.message, "error");
  }
}

function filterParams() {
  const params = {};
  const where = state.filters.includes("where") ? whereClause() : "";
  if (where) params.where = where;
  if ($("group-by").value) params.group_by = $("group-by").value;
  return params;
}

function searchText(q) {
  state.query = q;
  state.reference = null;
  $("upload").hidden = true;
  const params = withUnit(Object.assign({ q, k: String(PAGE) }, filterParams()));
  run(`“${q}”`, (offset) => api(`/api/search?${new URLSearchParams({ ...params, offset })}`));
}

function onSubmit(event) {
  event.preventDefault();
  const q = $("q").value.trim();
  if (!q) return;
  $("q").blur(); // the arrow keys now move through the results
  const params = toParams(q);
  if (location.search !== "?" + params) history.pushState(null, "", "?" + params);
  searchText(q);
}

function fromUrl() {
  const q = fromParams(new URLSearchParams(location.search));
  if (q) searchText(q);
  else if (state.results.length) { showOthers([], ""); status(t("indexed", state.images)); }
}

/** Results that are not pages of the last search (similar cases, "more like these"): no "more". */
function showOthers(results, label, reference = null) {
  ++state.seq;
  closeDetail();
  state.reference = reference;
  state.request = null;
  $("more").hidden = true;
  showResults(results, label);
}

function uploadSimilar(file) {
  state.query = "";
  const preview = $("upload-img");
  if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  $("upload-name").textContent = file.name;
  $("upload").hidden = false;
  state.reference = { img: preview, labelKey: "queryImage", labelArg: file.name };
  const fields = filterParams();
  run(t("imagesLike", file.name), (offset) => {
    const form = new FormData();
    form.append("file", file, file.name);
    Object.entries(fields).forEach(([name, value]) => form.append(name, value));
    return api(`/api/similar?k=${PAGE}&offset=${offset}`, { method: "POST", body: form });
  });
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

function open() {
  const result = state.results[state.selected];
  if (!result) return;
  const best = state.results[0];
  const reference = state.reference || { id: best.id, size: sizeOf(best), labelKey: "bestMatch", labelArg: best.id };
  const similarTo = (results, id) => {
    state.query = ""; // similar cases: the image is the query (its vector scores the slices; no heatmap)
    showOthers(results.map(asCard), t("similarTo", id),
      { id: Number(id), size: sizeOf(result), labelKey: "queryImage", labelArg: `#${id}` });
  };
  openDetail(result, state.query, similarTo, unit(), reference);
}

function sizeOf(result) {
  const m = result.metadata || {};
  return [m.width || 0, m.height || 0];
}

function addToBasket() {
  const shown = $("detail").hidden ? null : $("detail").dataset.id;
  const result = state.results.find((r) => String(r.id) === shown) || state.results[state.selected];
  if (!result) return;
  basket.set(result.id, result);
  renderBasket();
}

async function showMoreLikeThese() {
  const seq = ++state.seq;
  status(t("training"), "busy");
  $("more").hidden = true;
  try {
    const { results, report } = await moreLikeThese(state.query);
    if (seq !== state.seq) return;
    showOthers(results, t("likeBasket"));
    status(probeSummary(report));
  } catch (error) {
    if (seq === state.seq) status(error.message, "error");
  }
}

function columns() {
  return Math.max(1, getComputedStyle($("grid")).gridTemplateColumns.split(" ").length);
}

function onKey(event) {
  if (event.target.closest("#viewer-box") && !event.target.matches("input, select")) return; // the viewer's keys
  if (event.target.matches("input, textarea, select")) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(), ArrowUp: -columns() };
  if (event.key in moves) { select(state.selected + moves[event.key]); event.preventDefault(); }
  else if (event.key === "Enter") open();
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

function wire() {
  $("search-form").addEventListener("submit", onSubmit);
  $("unit").addEventListener("change", () => { if ($("q").value.trim()) onSubmit(new Event("submit")); });
  $("more").addEventListener("click", () => state.request && run(state.request.label, state.request.request,
    state.results.length));
  $("caption").addEventListener("change", () => showResults(state.results, state.request?.label || ""));
  $("close").addEventListener("click", closeDetail);
  $("add").addEventListener("click", addToBasket);
  $("export").addEventListener("click", exportCsv);
  $("clear").addEventListener("click", () => { basket.clear(); renderBasket(); });
  $("more-like").addEventListener("click", showMoreLikeThese);
  $("label-set").addEventListener("change", () => { $("label-text").value = ""; showLabels(); });
  $("label-text").addEventListener("change", showLabels);
  $("upload-img").addEventListener("error", () => { $("upload-img").hidden = true; });
  $("upload-img").addEventListener("load", () => { $("upload-img").hidden = false; });
  document.addEventListener("keydown", onKey);
  window.addEventListener("popstate", fromUrl);
  $("lang").addEventListener("change", () => applyLanguage($("lang").value));
  document.addEventListener("languagechange", () => {
    if (state.images !== null && !state.results.length) status(t("indexed", state.images));
    relabel();
    relabelDetail();
  });
  wireDrop();
  wireDetail();
}

async function start() {
  wire();
  applyLanguage(LANG);
  try {
    const info = await json("/api/info");
    state.filters = info.server.filters;
    $("filters").hidden = !state.filters.includes("where");
    state.images = info.images;
    status(t("indexed", info.images));
    loadLabelSets();
  } catch (error) {
    status(error.message, "error");
    return;
  }
  try {
    showSplits((await loadFacets()).splits);
  } catch (error) {
    status(error.message, "error"); // the lists are missing; typed filters still work
  }
  if (location.search) fromUrl(); // nothing to restore otherwise: keep what was typed while the lists loaded
}

start();
