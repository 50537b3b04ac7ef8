// The JSON API of the same server: the optional bearer token (asked once, kept for the tab), one error
// shape ({"error": {"message"}}) turned into an Error, and images fetched as blobs (the token is a header).

const $ = (id) => document.getElementById(id);

function token() { return sessionStorage.getItem("medsearch-token") || ""; }

async function askToken() {
  const dialog = $("token-dialog");
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  sessionStorage.setItem("medsearch-token", $("token").value.trim());
}

export async function api(path, options = {}, retry = true) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 && retry) {
    await askToken();
    return api(path, options, false);
  }
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

export async function json(path, options = {}) {
  return (await api(path, options)).json();
}

export function postJson(path, body) {
  return json(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

/** Show the PNG at ``path`` in ``img``; on failure leave ``fallback`` as its alt text. */
export async function showImage(img, path, fallback = "no preview") {
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.removeAttribute("src");
  try {
    img.src = URL.createObjectURL(await (await api(path)).blob());
  } catch (error) {
    img.alt = fallback;
    img.title = error.message;
  }
}

export function thumbnail(img, id, size = 256) {
  return showImage(img, `/api/items/${id}/thumbnail?size=${size}`);
}

export { $ };
