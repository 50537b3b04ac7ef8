// One result as a card: thumbnail, rank and score, the group (key and size) when grouped, the unit
// (series or study: its size and description) for unit results, and a short caption: modality, body part and date, or the field chosen in the caption list.

import { $, thumbnail } from "./api.js";
import { unitLine } from "./units.js";

const SHORT = 24;

function shortName(path) {
  const name = path.split("/").pop();
  return name.length <= SHORT ? name : name.slice(0, 10) + "…" + name.slice(-(SHORT - 11));
}

/** A field's value from the metadata, or from the sidecar/label fields when the server sends them. */
export function fieldOf(result, name) {
  if (name === "path") return result.path;
  for (const source of [result.metadata, result.fields, result.sidecar]) {
    if (source && source[name] !== undefined && source[name] !== null) return source[name];
  }
  return undefined;
}

export function caption(result, chosen) {
  if (chosen === "path") return shortName(result.path);
  if (chosen) {
    const value = fieldOf(result, chosen);
    return `${chosen.replace(/_/g, " ")}: ${value === undefined ? "—" : value}`;
  }
  const m = result.metadata || {};
  const known = [m.modality, m.body_part, m.study_date].filter(Boolean);
  return known.length ? known.join(" · ") : shortName(result.path);
}

function scoreText(result) {
  const prob = result.probability === undefined ? "" : `p=${result.probability.toFixed(3)}`;
  const score = result.score === undefined ? "" : result.score.toFixed(3);
  return [`#${result.rank}`, score, prob].filter(Boolean).join("  ");
}

export function card(result, onOpen, inBasket = false) {
  const element = document.createElement("div");
  element.className = "card" + (inBasket ? " in-basket" : "");
  element.dataset.id = result.id;
  const img = document.createElement("img");
  img.alt = `image ${result.id}`;
  thumbnail(img, result.id);
  const score = document.createElement("div");
  score.className = "score";
  score.textContent = scoreText(result);
  element.append(img, score);
  if (result.group) {
    const group = document.createElement("div");
    group.className = "group";
    group.textContent = `${result.group.by}: ${result.group.key ?? t("alone")} · ${t("groupSize", result.group.size)}`;
    element.append(group);
  }
  if (result.unit && result.unit !== "image") {
    element.dataset.unit = result.unit;
    element.dataset.key = result.key;
    const line = document.createElement("div");
    line.className = "group unit";
    line.textContent = unitLine(result);
    line.title = result.key;
    element.append(line);
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = caption(result, $("caption").value);
  meta.title = result.path;
  element.append(meta);
  element.addEventListener("click", onOpen);
  return element;
}
