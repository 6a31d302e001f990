// A fetch wrapper: Bearer token, JSON in and out, every failure an ApiError with a code.
import { t, has } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** A message for people: the translated code if we know it, else the server's message. */
export function describeError(err) {
  if (!err) return "";
  const code = err.code || err.error?.code;
  const message = err.message || err.error?.message || String(err);
  if (code && has("error." + code)) {
    const fields = err.details?.fields;
    const extra = fields && fields.length ? ` (${fields.map((f) => f.field).join(", ")})` : "";
    return t("error." + code) + extra;
  }
  return message;
}

async function parse(resp) {
  const type = resp.headers.get("Content-Type") || "";
  if (type.includes("application/json")) {
    try { return await resp.json(); } catch { return null; }
  }
  return null;
}

export function createApi({ getToken = () => null, onUnauthorized = null, base = "/api/v1" } = {}) {
  function headers(extra = {}) {
    const h = { Accept: "application/json", ...extra };
    const tok = getToken();
    if (tok) h.Authorization = "Bearer " + tok;
    return h;
  }

  const url = (path) => (path.startsWith("/api/") || path.startsWith("http") ? path : base + path);

  async function request(method, path, body, opts = {}) {
    const init = { method, headers: headers(), cache: "no-store" };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (opts.signal) init.signal = opts.signal;
    let resp;
    try {
      resp = await fetch(url(path), init);
    } catch {
      throw new ApiError(0, "network", t("error.network"));
    }
    if (opts.raw && resp.ok) return resp;
    const data = await parse(resp);
    if (!resp.ok) {
      const err = data?.error;
      const e = new ApiError(resp.status, err?.code || "http_" + resp.status, err?.message || resp.statusText, err?.details);
      if (resp.status === 401 && onUnauthorized) onUnauthorized(e);
      throw e;
    }
    return data;
  }

  /** Upload with progress (fetch has no upload progress): onProgress(fraction). */
  function upload(path, formData, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url(path));
      for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
      xhr.upload.addEventListener("progress", (ev) => {
        if (ev.lengthComputable && onProgress) onProgress(ev.loaded / ev.total);
      });
      xhr.addEventListener("load", () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300) return resolve(data);
        const err = data?.error;
        const e = new ApiError(xhr.status, err?.code || "http_" + xhr.status, err?.message || xhr.statusText, err?.details);
        if (xhr.status === 401 && onUnauthorized) onUnauthorized(e);
        reject(e);
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "network", t("error.network"))));
      xhr.send(formData);
    });
  }

  /** Download a binary answer (PDF, zip) and hand it to the browser as a file. */
  async function download(path, filename) {
    const resp = await request("GET", path, undefined, { raw: true });
    if (resp.status === 202) {
      const data = await parse(resp);
      return { pending: true, data };
    }
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    return { pending: false, size: blob.size };
  }

  return {
    get: (p, o) => request("GET", p, undefined, o),
    post: (p, b = {}, o) => request("POST", p, b, o),
    patch: (p, b = {}, o) => request("PATCH", p, b, o),
    del: (p, o) => request("DELETE", p, undefined, o),
    raw: (p, o) => request("GET", p, undefined, { ...o, raw: true }),
    upload,
    download,
    headers,
  };
}
