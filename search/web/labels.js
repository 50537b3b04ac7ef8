// The detail panel's zero-shot labels: the built-in sets (with "no set" first), and the opened image's
// probabilities for the chosen set or for labels typed by the user (model scores, not a diagnosis).

import { $, json, postJson } from "./api.js";

const labels = { seq: 0, korean: {} };

export async function loadLabelSets() {
  try {
    const body = await json("/api/label-sets");
    $("label-set").replaceChildren(new Option(t("labelsNone"), ""), ...body.label_sets.map((set) => {
      const option = new Option(set.name, set.name);
      option.title = set.description;
      set.labels.forEach((label) => { if (label.korean) labels.korean[label.name] = label.korean; });
      return option;
    }));
  } catch (error) {
    $("label-note").textContent = error.message;
  }
}

export async function showLabels() {
  const id = Number($("detail").dataset.id);
  const seq = ++labels.seq;
  const own = $("label-text").value.trim();
  const request = own ? { ids: [id], labels: own } : { ids: [id], labels_set: $("label-set").value };
  $("label-probs").replaceChildren();
  if (!own && !request.labels_set) { $("label-note").textContent = t("labelsChoose"); return; }
  $("label-note").textContent = t("scoring");
  try {
    const body = await postJson("/api/classify", request);
    if (seq !== labels.seq) return;
    const result = body.results[0];
    const rows = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
    $("label-probs").replaceChildren(...rows.map(([name, p]) => labelRow(name, p, result)));
    $("label-note").textContent = (result.needs_review ? t("review") : "") + t("note");
  } catch (error) {
    if (seq === labels.seq) $("label-note").textContent = error.message;
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
  cells[0].textContent = (LANG === "ko" && labels.korean[name]) || name.replace(/_/g, " ");
  cells[1].append(meter);
  cells[2].textContent = p.toFixed(3);
  tr.append(...cells);
  return tr;
}

/** The "no label set" entry in the page's language. */
export function labelsNone() {
  if ($("label-set").options.length) $("label-set").options[0].textContent = t("labelsNone");
}
