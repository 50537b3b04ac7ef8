// The filter row: lists of values with counts (from /api/facets), dates, a typed expression, the grouping
// and the caption choice; the filter as one where expression; all of it to and from the URL.

import { $, json } from "./api.js";

const TYPED_CONTROLS = ["f-from", "f-to", "f-where", "group-by", "caption", "unit"];
let facetColumns = {};

function quote(value) { return "'" + String(value).replace(/'/g, "''") + "'"; }

const KEYWORDS = new Set(["and", "or", "not", "in", "is", "null", "like", "true", "false"]);

/** A column name as the filter language reads it: bare, or in double quotes (spaces, '-', Korean...). */
function nameOf(column) {
  const bare = /^[A-Za-z_][A-Za-z0-9_.]*$/.test(column) && !KEYWORDS.has(column.toLowerCase());
  return bare ? column : '"' + column.replace(/"/g, '""') + '"';
}

function literal(value, kind) { return kind === "number" || kind === "bool" ? String(value) : quote(value); }

function facetSelect(name, facet) {
  const select = document.createElement("select");
  select.dataset.column = name;
  select.dataset.kind = facet.kind;
  select.setAttribute("aria-label", name);
  const any = new Option(`${fieldName(name)}: ${t("any")}`, "");
  select.append(any, ...facet.values.map((v) => new Option(`${v.value} (${v.count})`, String(v.value))));
  return select;
}

/** Load the lists (counts over the whole store) and name a real column in the example filter. */
export async function loadFacets() {
  const body = await json("/api/facets");
  facetColumns = body.columns;
  $("facets").replaceChildren(...Object.entries(body.columns).map(([name, facet]) => facetSelect(name, facet)));
  const captions = Object.keys(body.columns).map((name) => new Option(fieldName(name), name));
  $("caption").replaceChildren(new Option(t("captionAuto"), ""), new Option(t("captionFile"), "path"), ...captions);
  exampleFilter();
  return body;
}

/** The list labels and the example again, in the page's language now. */
export function relabel() {
  $("facets").querySelectorAll("select").forEach((s) => {
    s.options[0].textContent = `${fieldName(s.dataset.column)}: ${t("any")}`;
  });
  if ($("caption").options.length >= 2) {
    $("caption").options[0].textContent = t("captionAuto");
    $("caption").options[1].textContent = t("captionFile");
    [...$("caption").options].slice(2).forEach((o) => { o.textContent = fieldName(o.value); });
  }
  exampleFilter();
}

function exampleFilter() {
  const [name, facet] = Object.entries(facetColumns).reverse()[0] || ["study_date", null];
  const example = facet ? `${nameOf(name)} = ${literal(facet.values[0].value, facet.kind)}` : "study_date >= '2020-01-01'";
  $("f-where").placeholder = `${t("moreFilters")} ${example}`;
}

/** The chosen lists, dates and typed text as one expression ("" when nothing is chosen). */
export function whereClause() {
  const parts = [...$("facets").querySelectorAll("select")].filter((s) => s.value)
    .map((s) => `${nameOf(s.dataset.column)} = ${literal(s.value, s.dataset.kind)}`);
  if ($("f-from").value) parts.push(`study_date >= ${quote($("f-from").value)}`);
  if ($("f-to").value) parts.push(`study_date <= ${quote($("f-to").value)}`);
  if ($("f-where").value.trim()) parts.push(`(${$("f-where").value.trim()})`);
  return parts.join(" and ");
}

/** URL parameters of the query and every filter control. */
export function toParams(q) {
  const params = new URLSearchParams();
  if (q) params.set("q", q);
  for (const id of TYPED_CONTROLS) if ($(id).value.trim()) params.set(id, $(id).value.trim());
  $("facets").querySelectorAll("select").forEach((s) => { if (s.value) params.set("f." + s.dataset.column, s.value); });
  return params;
}

/** Set the controls from URL parameters; returns the query text. */
export function fromParams(params) {
  for (const id of TYPED_CONTROLS) $(id).value = params.get(id) || "";
  $("facets").querySelectorAll("select").forEach((s) => { s.value = params.get("f." + s.dataset.column) || ""; });
  $("q").value = params.get("q") || "";
  return $("q").value.trim();
}
