// The cohort basket: add, clear, export as CSV, "more like these" (a probe trained on the basket,
// POST /api/probes) and the counts of the store's splits.

import { $, json, postJson } from "./api.js";

export const basket = new Map();

export function renderBasket() {
  $("basket-count").textContent = basket.size;
  $("basket-items").textContent = [...basket.values()].map((r) => "#" + r.id).join(" ");
  $("export").disabled = $("clear").disabled = basket.size === 0;
  $("more-like").disabled = basket.size < 2;
  [...$("grid").children].forEach((el) => el.classList.toggle("in-basket", basket.has(Number(el.dataset.id))));
}

export function exportCsv() {
  const columns = ["id", "path", "score", "modality", "body_part", "study_date", "series_description"];
  const cell = (v) => (v === undefined || v === null ? "" : `"${String(v).replace(/"/g, '""')}"`);
  const lines = [columns.join(",")];
  for (const r of basket.values()) {
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

/** Train the probe "page-basket" on the basket's ids; resolves to {results, report} for the grid. */
export async function moreLikeThese(query) {
  const positives = [...basket.keys()];
  const report = await postJson("/api/probes", { name: "page-basket", positives, prompt: query || "an image", k: 40 });
  const results = report.more_like_these.map((r, i) => Object.assign({ rank: i + 1 }, r));
  return { results, report };
}

export function probeSummary(report) {
  const auc = (value) => (value === null || value === undefined ? "–" : value.toFixed(2));
  return t("probeSummary", report.more_like_these.length, report.positives, auc(report.cv_auc));
}

/** One line per split field: "split: train 24 · test 24". */
export async function showSplits(names) {
  const lines = await Promise.all(names.map(async (name) => {
    try {
      const body = await json(`/api/splits/${encodeURIComponent(name)}`);
      return `${name}: ` + Object.entries(body.images).map(([value, n]) => `${value} ${n}`).join(" · ");
    } catch (error) {
      return `${name}: ${error.message}`;
    }
  }));
  $("splits").textContent = lines.length ? `${t("splits")} ${lines.join("; ")}` : "";
  $("splits").hidden = !lines.length;
}
