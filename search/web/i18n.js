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
