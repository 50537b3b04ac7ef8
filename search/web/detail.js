// The detail panel: the viewer (viewer.js) on the opened result, its series' slices with their scores for
// the current query (GET /api/view/{id}), window presets, the heatmap overlay with its colour bar, side by
// side with the query image or the best match, "open in viewer" and "copy UIDs"; below it the zero-shot
// labels (the set that fits the image's modality, or none), every metadata field, the timeline (only for
// an image with a patient) and similar cases. Every answer is checked against the panel's sequence number,
// so a late one for an image no longer shown is dropped.

import { $, json, showImage } from "./api.js";
import { card } from "./cards.js";
import { labelsNone, showLabels } from "./labels.js";
import { heatColour, Viewer } from "./viewer.js";
import { asCard, noTimeline, showTimeline } from "./units.js";

const panel = { seq: 0, query: "", info: null, slice: 0, size: [0, 0], reference: null,
  heat: {}, result: null, remote: false };
const PRESET_KEYS = { lung: "presetLung", mediastinum: "presetMediastinum", bone: "presetBone", brain: "presetBrain",
  "soft-tissue": "presetSoftTissue" };
let viewer = null;

function theViewer() {
  viewer = viewer || new Viewer($("viewer-box"), { onWindow: showWindow, onSlice: moveSlice });
  return viewer;
}

function row(key, value) {
  const tr = document.createElement("tr");
  tr.innerHTML = "<td></td><td></td>";
  tr.children[0].textContent = key;
  tr.children[1].textContent = typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
  return tr;
}

/** id, path, the metadata, then every other group of fields the item carries (sidecar, labels). */
function showItem(item) {
  const rows = [row("id", item.id), row("path", item.path)];
  for (const value of Object.values(item)) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      Object.entries(value).forEach(([name, v]) => rows.push(row(name, v)));
    }
  }
  $("detail-meta").replaceChildren(...rows);
  $("viewer").hidden = !item.viewer_url;
  if (item.viewer_url) $("viewer").href = item.viewer_url;
}

async function showMeta(id, seq) {
  $("viewer").hidden = true;
  try {
    const item = await json(`/api/items/${id}`);
    if (seq === panel.seq) showItem(item);
  } catch (error) {
    if (seq === panel.seq) $("detail-meta").replaceChildren(row("error", error.message));
  }
}

/** The slices, presets, UIDs, label set and timeline of the opened image (one request). */
async function showInfo(result, seq, onOpen) {
  const params = new URLSearchParams();
  if (panel.query) params.set("q", panel.query);
  else if (panel.reference && panel.reference.id) params.set("similar", String(panel.reference.id));
  try {
    const info = await json(`/api/view/${result.id}?${params}`);
    if (seq !== panel.seq) return;
    panel.info = info;
    panel.slice = info.index;
    showSlices();
    showPresets(info.presets);
    $("copy-uids").hidden = !Object.keys(info.uids).length;
    if (!$("label-text").value.trim()) $("label-set").value = info.label_set || "";
    showLabels();
    if (info.has_patient) showTimeline(result.id, panel.query, onOpen);
    else noTimeline(result.id);
  } catch (error) {
    if (seq === panel.seq) $("slice-text").textContent = error.message;
  }
}

function showSlices() {
  const { slices } = panel.info;
  $("slice-row").hidden = slices.length < 2 || panel.remote;
  $("slice").max = String(slices.length - 1);
  $("slice").value = String(panel.slice);
  const current = slices[panel.slice];
  const score = current.score === null ? "" : ` · ${t("score")} ${current.score.toFixed(3)}`;
  $("slice-text").textContent = slices.length > 1 ? `${t("slice", panel.slice + 1, slices.length)}${score}` : score;
  $("main-label").textContent = `#${current.id}${score}`;
  $("detail").dataset.slice = String(current.id);
}

/** Step through the series (``step`` 0: whether there is more than one slice). */
function moveSlice(step) {
  const slices = panel.info ? panel.info.slices : [];
  if (step === 0) return slices.length > 1 && !panel.remote;
  goToSlice(Math.max(0, Math.min(slices.length - 1, panel.slice + step)));
  return true;
}

function goToSlice(index) {
  if (!panel.info || panel.remote || index === panel.slice) return;
  panel.slice = index;
  showSlices();
  theViewer().show(panel.info.slices[index].id, panel.size, null, true);
  if ($("explain").checked) showHeatmap();
}

function showPresets(presets) {
  const names = Object.keys(presets || {});
  $("preset").hidden = !names.length;
  $("preset").replaceChildren(new Option(t("presetOwn"), ""),
    ...names.map((name) => new Option(t(PRESET_KEYS[name]) || name, presets[name].join(","))));
}

function showWindow(window) {
  $("window-level").textContent = window ? `${t("windowLevel")} ${window[1]} / ${window[0]}` : "";
  const value = window ? window.join(",") : "";
  const known = [...$("preset").options].some((o) => o.value === value);
  $("preset").value = known ? value : "";
}

/** Toggle the heatmap of the current query over the current slice, with its colour bar and note. */
export async function showHeatmap() {
  const on = $("explain").checked && Boolean(panel.query);
  $("heat-legend").hidden = !on;
  theViewer().showOverlay(on);
  if (!on) return;
  const id = panel.info ? panel.info.slices[panel.slice].id : panel.result.id;
  const key = `${id}\n${panel.query}`;
  const seq = panel.seq;
  $("pane-main").classList.add("loading");
  try {
    panel.heat[key] = panel.heat[key] || await json(`/api/explain?${new URLSearchParams({ id, text: panel.query, format: "json" })}`);
    if (seq !== panel.seq || theViewer().main.id !== id) return;
    const drawn = theViewer().setOverlay(panel.heat[key]);
    legend(drawn.heat, panel.heat[key]);
    $("detail").dataset.heatmap = String(id);
  } catch (error) {
    if (seq === panel.seq) $("heat-caption").textContent = error.message;
  } finally {
    if (!theViewer().main.inFlight) $("pane-main").classList.remove("loading");
  }
}

function legend(heat, body) {
  const bar = $("heat-bar").getContext("2d");
  for (let x = 0; x < $("heat-bar").width; x++) {
    bar.fillStyle = `rgb(${heatColour(x / ($("heat-bar").width - 1)).join(",")})`;
    bar.fillRect(x, 0, 1, $("heat-bar").height);
  }
  $("heat-low").textContent = heat.low.toFixed(3);
  $("heat-high").textContent = heat.high.toFixed(3);
  $("heat-caption").textContent = `${t("heatLegend", body.method, body.score.toFixed(3))} ${t("explainNote")}`;
}

/** The reference pane: beside the result, the query image (an upload, or the image ``similar`` was
 *  asked for) or the best match; shown when "side by side" is on. */
function showReference() {
  const reference = $("compare").checked ? panel.reference : null;
  const view = theViewer();
  if (!reference) { view.showReference(null); return; }
  $("ref-label").textContent = t(reference.labelKey, reference.labelArg);
  view.showReference(reference.id ?? null, reference.size || [0, 0], reference.img || null);
}

async function copyUids() {
  const uids = panel.info ? panel.info.uids : {};
  const text = Object.entries(uids).map(([name, value]) => `${name}: ${value}`).join("\n");
  $("copy-uids").dataset.copied = text;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) { // no clipboard permission (a plain-HTTP page): the text is selected for Ctrl+C instead
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  $("copy-uids").textContent = t("copied");
  setTimeout(() => { $("copy-uids").textContent = t("copyUids"); }, 1500);
}

async function showSimilar(result, seq, onShowAll, unit) {
  $("similar").replaceChildren();
  try {
    const params = new URLSearchParams({ k: "7" });
    if (unit && unit !== "image") params.set("unit", unit);
    const body = await json(`/api/similar/${result.id}?${params}`);
    if (seq !== panel.seq) return;
    const others = body.results.map(asCard).filter((r) => r.id !== result.id).slice(0, 6);
    $("similar").replaceChildren(...others.map((r) => card(r, () => onShowAll(body.results, result.id))));
  } catch (error) {
    if (seq === panel.seq) $("similar").textContent = error.message;
  }
}

function showModelInput() {
  const id = $("detail").dataset.id;
  if (id && $("model-box").open && !panel.remote) showImage($("model-img"), `/api/items/${id}/model-input`, t("noModelInput"));
}

/** Open ``result``; ``query`` is the current text query ("" for none: no heatmap offered); similar cases
 *  are of ``unit``; ``reference``: the picture to put beside it ({id, size} or {img}, with ``labelKey`` and
 *  ``labelArg`` naming it) or null. */
export function openDetail(result, query, onShowAll, unit = "image", reference = null) {
  const seq = ++panel.seq;
  Object.assign(panel, { query, result, reference, info: null, slice: 0 });
  const metadata = result.metadata || {};
  panel.size = [metadata.width || 0, metadata.height || 0];
  $("detail").hidden = false;
  $("detail").dataset.id = result.id;
  $("explain").checked = false;
  $("heat-legend").hidden = true;
  $("slice-row").hidden = true;
  $("slice-text").textContent = "";
  $("main-label").textContent = `#${result.id}`;
  $("detail-title").textContent = [metadata.modality, metadata.body_part, metadata.study_date].filter(Boolean).join(" · ");
  $("copy-uids").hidden = true;
  $("label-probs").replaceChildren();
  const placeholder = document.querySelector(`.card[data-id="${result.id}"] img`);
  panel.remote = String(result.path || "").startsWith("dicomweb+"); // its file is not kept: the thumbnail only
  $("explain-row").hidden = !query || panel.remote;
  $("model-box").hidden = panel.remote;
  const view = theViewer();
  view.showOverlay(false);
  view.show(result.id, panel.size, placeholder, false, !panel.remote);
  view.fit();
  showReference();
  showModelInput();
  showMeta(result.id, seq);
  const onOpen = (study) => openDetail(study, query, onShowAll, unit, reference);
  showInfo(result, seq, onOpen);
  showSimilar(result, seq, onShowAll, unit);
}

export function closeDetail() {
  ++panel.seq;
  $("detail").hidden = true;
  delete $("detail").dataset.id;
}

/** The panel's words again in the page's language. */
export function relabelDetail() {
  labelsNone();
  if ($("detail").hidden) return;
  if (panel.info) { showSlices(); showPresets(panel.info.presets); showWindow(theViewer().window); }
  if (panel.reference) $("ref-label").textContent = t(panel.reference.labelKey, panel.reference.labelArg);
  showLabels();
  if ($("explain").checked) showHeatmap();
}

/** Wire the panel's own controls. */
export function wireDetail() {
  const view = () => theViewer();
  $("fit").addEventListener("click", () => view().fit());
  $("one").addEventListener("click", () => view().oneToOne());
  $("zoom-in").addEventListener("click", () => view().zoomBy(1.25));
  $("zoom-out").addEventListener("click", () => view().zoomBy(0.8));
  $("tool").addEventListener("change", () => { view().tool = $("tool").value; });
  $("preset").addEventListener("change", () => {
    if ($("preset").value) view().setWindow($("preset").value.split(",").map(Number));
  });
  $("explain").addEventListener("change", showHeatmap);
  $("compare").addEventListener("change", showReference);
  $("copy-uids").addEventListener("click", copyUids);
  $("slice").addEventListener("input", () => goToSlice(Number($("slice").value)));
  $("model-box").addEventListener("toggle", showModelInput);
}
