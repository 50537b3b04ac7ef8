// The detail panel: the display thumbnail beside the model's input (or the explanation overlay of the
// current text query), every metadata and sidecar/label field, zero-shot labels, the viewer link and
// similar cases.

import { $, json, postJson, showImage, thumbnail } from "./api.js";
import { card } from "./cards.js";
import { asCard, showTimeline } from "./units.js";

const panel = { seq: 0, labelSeq: 0, korean: {}, query: "" };

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
  for (const [key, value] of Object.entries(item)) {
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

/** The model input, or with the toggle on the explanation of the current text query over it. */
export function showSecondImage() {
  const id = $("detail").dataset.id;
  if (!id) return;
  const explaining = $("explain").checked && panel.query;
  $("second-caption").textContent = explaining ? t("explainNote") : t("modelInput");
  const path = explaining ? `/api/explain?${new URLSearchParams({ id, text: panel.query })}`
    : `/api/items/${id}/model-input`;
  $("model-img").dataset.kind = explaining ? "explain" : "model-input";
  showImage($("model-img"), path, t("noModelInput"));
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
    $("similar").textContent = error.message;
  }
}

/** Open ``result``; ``query`` is the current text query ("" for none: no explanation offered); similar
 *  cases are of ``unit`` (image, series or study). */
export function openDetail(result, query, onShowAll, unit = "image") {
  const seq = ++panel.seq;
  panel.query = query;
  $("detail").hidden = false;
  $("detail").dataset.id = result.id;
  $("explain-row").hidden = !query;
  thumbnail($("detail-img"), result.id, 512);
  showSecondImage();
  showMeta(result.id, seq);
  showLabels();
  showSimilar(result, seq, onShowAll, unit);
  showTimeline(result.id, query, (study) => openDetail(study, query, onShowAll, unit));
}

export function closeDetail() { $("detail").hidden = true; }

export async function loadLabelSets() {
  try {
    const body = await json("/api/label-sets");
    $("label-set").replaceChildren(...body.label_sets.map((set) => {
      const option = new Option(set.name, set.name);
      option.title = set.description;
      set.labels.forEach((label) => { if (label.korean) panel.korean[label.name] = label.korean; });
      return option;
    }));
  } catch (error) {
    $("label-note").textContent = error.message;
  }
}

export async function showLabels() {
  const id = Number($("detail").dataset.id);
  const seq = ++panel.labelSeq;
  const own = $("label-text").value.trim();
  const request = own ? { ids: [id], labels: own } : { ids: [id], labels_set: $("label-set").value };
  if (!own && !request.labels_set) return;
  $("label-probs").replaceChildren();
  $("label-note").textContent = t("scoring");
  try {
    const body = await postJson("/api/classify", request);
    if (seq !== panel.labelSeq) return;
    const result = body.results[0];
    const rows = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
    $("label-probs").replaceChildren(...rows.map(([name, p]) => labelRow(name, p, result)));
    $("label-note").textContent = (result.needs_review ? t("review") : "") + t("note");
  } catch (error) {
    if (seq === panel.labelSeq) $("label-note").textContent = error.message;
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
  cells[0].textContent = (LANG === "ko" && panel.korean[name]) || name.replace(/_/g, " ");
  cells[1].append(meter);
  cells[2].textContent = p.toFixed(3);
  tr.append(...cells);
  return tr;
}
