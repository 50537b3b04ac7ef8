// The page's own words in English and Korean: one dictionary, one apply function. Elements name their
// text with data-i18n="key" (text) or data-i18n-placeholder="key"; app.js asks t("key") for the rest.
"use strict";

const TEXTS = {
  en: {
    search: "Search",
    placeholder: "Describe what you look for, e.g. left pleural effusion",
    drop: "Drop an image (DICOM, PNG, JPEG) here, or click to choose one, to find similar cases",
    labels: "Zero-shot labels",
    ownLabels: "or your own: normal;pneumonia",
    add: "Add to basket (b)",
    similar: "Similar cases",
    basket: "Cohort basket:",
    export: "Export CSV",
    clear: "Clear",
    hint: "Keys: arrows move, Enter opens, b adds to basket, Esc closes.",
    note: "Model scores for the given prompts, not a diagnosis; a person must review them.",
    review: "Needs human review. ",
    scoring: "Scoring labels…",
    indexed: (n) => `${n} images indexed. Type a description and press Enter.`,
    searching: (q) => `Searching ${q}…`,
    results: (n, q) => `${n} results for ${q}`,
    noResults: (q) => `No results for ${q}`,
    searchedAs: "searched as",
    notUnderstood: "not understood, left out",
    viewer: "Open in viewer",
    from: "from",
    to: "to",
    any: "any",
    moreFilters: "More filters, e.g.",
    groupBy: "group by",
    groupNone: "nothing",
    groupStudy: "study",
    groupSeries: "series",
    groupPatient: "patient",
    captionLabel: "caption",
    captionAuto: "modality · date",
    captionFile: "file name",
    alone: "(alone)",
    groupSize: (n) => `${n} image${n === 1 ? "" : "s"}`,
    more: "More results",
    uploaded: "Searched with",
    imagesLike: (name) => `images like ${name}`,
    similarTo: (id) => `similar to #${id}`,
    display: "Display",
    modelInput: "Model input (what the model saw)",
    noModelInput: "no model input",
    explain: "Explain the score for this query",
    explainNote: "Heuristic explanation of the score, not a finding",
    moreLike: "More like these",
    training: "Training a probe on the basket…",
    likeBasket: "images like the basket",
    probeSummary: (n, p, auc) => `${n} more like the ${p} in the basket (probe, cross-validated AUC ${auc})`,
    splits: "Splits:",
  },
  ko: {
    search: "검색",
    placeholder: "찾는 소견을 적으세요. 예: 좌측 흉막삼출",
    drop: "영상(DICOM, PNG, JPEG)을 여기에 끌어 놓거나 눌러서 골라 비슷한 증례를 찾습니다",
    labels: "제로샷 레이블",
    ownLabels: "직접 입력: 정상;폐렴",
    add: "장바구니에 담기 (b)",
    similar: "비슷한 증례",
    basket: "코호트 장바구니:",
    export: "CSV 내보내기",
    clear: "비우기",
    hint: "키: 화살표로 이동, Enter로 열기, b로 담기, Esc로 닫기.",
    note: "주어진 프롬프트에 대한 모델 점수이며 진단이 아닙니다. 반드시 사람이 검토해야 합니다.",
    review: "사람의 검토가 필요합니다. ",
    scoring: "레이블 점수 계산 중…",
    indexed: (n) => `영상 ${n}개가 색인되어 있습니다. 설명을 입력하고 Enter를 누르세요.`,
    searching: (q) => `${q} 검색 중…`,
    results: (n, q) => `${q} 검색 결과 ${n}개`,
    noResults: (q) => `${q} 검색 결과가 없습니다`,
    searchedAs: "검색한 영어",
    notUnderstood: "이해하지 못해 뺀 단어",
    viewer: "뷰어에서 열기",
    from: "시작",
    to: "끝",
    any: "전체",
    moreFilters: "다른 조건, 예:",
    groupBy: "묶기",
    groupNone: "묶지 않음",
    groupStudy: "검사",
    groupSeries: "시리즈",
    groupPatient: "환자",
    captionLabel: "표시 항목",
    captionAuto: "모달리티 · 날짜",
    captionFile: "파일 이름",
    alone: "(단독)",
    groupSize: (n) => `영상 ${n}개`,
    more: "결과 더 보기",
    uploaded: "검색에 쓴 영상",
    imagesLike: (name) => `${name}와 비슷한 영상`,
    similarTo: (id) => `#${id}와 비슷한 영상`,
    display: "표시 영상",
    modelInput: "모델 입력 (모델이 본 영상)",
    noModelInput: "모델 입력 없음",
    explain: "이 검색어에 대한 점수 설명 보기",
    explainNote: "점수에 대한 휴리스틱 설명이며 소견이 아닙니다",
    moreLike: "이것과 비슷한 영상 더 찾기",
    training: "장바구니로 프로브 학습 중…",
    likeBasket: "장바구니와 비슷한 영상",
    probeSummary: (n, p, auc) => `장바구니 ${p}개와 비슷한 영상 ${n}개 (프로브, 교차검증 AUC ${auc})`,
    splits: "분할:",
  },
};

let LANG = localStorage.getItem("medsearch-lang") === "ko" ? "ko" : "en";

function t(key, ...args) {
  const text = TEXTS[LANG][key] ?? TEXTS.en[key];
  return typeof text === "function" ? text(...args) : text;
}

function applyLanguage(lang) {
  LANG = lang in TEXTS ? lang : "en";
  localStorage.setItem("medsearch-lang", LANG);
  document.documentElement.lang = LANG;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.getElementById("lang").value = LANG;
  document.dispatchEvent(new CustomEvent("languagechange"));
}
