// Series and study results and the patient's timeline. The unit switch beside the search box sends
// unit= to /api/search and /api/similar; a unit result becomes a card of its best image with its size,
// modality and date. The detail panel's timeline lists the patient's studies oldest first
// (GET /api/timeline), each with its best image for the current query; it is not asked for an image
// without a patient (the server would answer 400): the box stays empty and hidden.

import { $, json, thumbnail } from "./api.js";

const timelineState = { seq: 0 };

/** The chosen unit: "image", "series" or "study". */
export function unit() { return $("unit").value || "image"; }

/** ``params`` with the chosen unit (series/study results cannot also be grouped). */
export function withUnit(params) {
  if (unit() === "image") return params;
  const out = Object.assign({}, params, { unit: unit() });
  delete out.group_by;
  return out;
}

/** A unit result shaped as an image result for the rest of the page: its id (opened, added to the
 *  basket) is its best image's; its summary stands in as metadata for the caption. */
export function asCard(result) {
  if (!result.unit || result.unit === "image") return result;
  const metadata = { modality: result.modality, study_date: result.study_date,
    series_description: result.description, study_instance_uid: result.study_instance_uid };
  return Object.assign({}, result, { id: result.image_id, metadata });
}

/** The card line of a unit: "series · 12 images · description". */
export function unitLine(result) {
  const kind = result.unit === "study" ? t("unitStudyOne") : t("unitSeriesOne");
  return [kind, t("groupSize", result.size), result.description].filter(Boolean).join(" · ");
}

function entry(study, onOpen) {
  const item = document.createElement("li");
  item.className = study.current ? "current" : "";
  item.dataset.study = study.study_instance_uid;
  item.dataset.id = study.image_id;
  const img = document.createElement("img");
  img.alt = `image ${study.image_id}`;
  thumbnail(img, study.image_id, 128);
  const text = document.createElement("span");
  text.className = "when";
  text.textContent = [study.study_date || t("undated"), study.modality, t("seriesCount", study.series),
    t("groupSize", study.images), study.current ? t("currentStudy") : ""].filter(Boolean).join(" · ");
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = study.score.toFixed(3);
  item.append(img, text, score);
  item.addEventListener("click", () => onOpen({ id: study.image_id, path: study.path }));
  return item;
}

/** No timeline for image ``id`` (it has no patient): nothing asked, the box hidden. */
export function noTimeline(id) {
  ++timelineState.seq;
  $("timeline-box").hidden = true;
  $("timeline").replaceChildren();
  $("timeline-box").dataset.for = String(id);
}

/** Fill the timeline of image ``id`` for ``query`` ("" for the image's own vector); ``onOpen`` opens a
 *  study's best image. */
export async function showTimeline(id, query, onOpen) {
  const seq = ++timelineState.seq;
  $("timeline-box").hidden = true;
  delete $("timeline-box").dataset.for;
  $("timeline").replaceChildren();
  const params = new URLSearchParams({ id: String(id) });
  if (query) params.set("q", query);
  try {
    const body = await json(`/api/timeline?${params}`);
    if (seq !== timelineState.seq) return;
    $("timeline").replaceChildren(...body.studies.map((study) => entry(study, onOpen)));
    $("timeline-box").hidden = body.studies.length === 0;
  } catch (error) {
    if (seq !== timelineState.seq) return;
    $("timeline").textContent = error.message;
    $("timeline-box").hidden = error.status === 400 || error.status === 404; // no patient: nothing
  }
  $("timeline-box").dataset.for = String(id); // answered (shown or not) for this image
}
