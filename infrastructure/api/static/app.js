// The artifacts page and the page of one artifact, filled from the JSON API.
// Everything from the server is written with textContent: filenames are hostile input.
"use strict";

const POLL_MS = 1500;
const KEY_STORAGE = "artifacts.apiKey";
// A run in one of these is over: it changes only when reprocessed.
const FINAL_STATUSES = ["processed", "failed", "cancelled"];
// What a stopped run's reason means, beside the machine-readable word.
const REASONS = {
  cancelled: "stopped on request",
  run_cancelled: "the run was cancelled in Temporal before it could record why",
  run_terminated: "the run was terminated in Temporal",
  run_timed_out: "the run passed its time bound",
  run_failed: "the run failed without recording why",
  run_lost: "the run no longer exists in Temporal",
  parser_killed: "the parser was killed from outside on every attempt",
};

// What a result's warning means, for whoever reads the page.
const WARNINGS = {
  no_text:
    "No text was found in this document, not even by OCR: it is blank, a picture, or a " +
    "scan too faint to read. It is processed, but its text, Markdown and chunks are " +
    "empty and it has no summary.",
  ocr_timeout:
    "OCR of a page ran out of time (OCR_PAGE_TIMEOUT_SECONDS): that page has the words " +
    "read by then, maybe not all of them. Its page facts say which pages were OCRed.",
};
// Where a page's text came from (GET /artifacts/{id}/pages).
const SOURCES = { text: "text layer", ocr: "OCR", none: "nothing legible" };

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: "Bearer " + key } : {};
}

function setUpApiKeyField() {
  const field = document.getElementById("api-key");
  field.value = apiKey();
  field.addEventListener("input", () => {
    const key = field.value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  });
}

async function getJson(url) {
  const response = await fetch(url, { headers: authHeaders(), cache: "no-store" });
  if (!response.ok) {
    const error = new Error(await problem(response));
    error.status = response.status;
    throw error;
  }
  return response.json();
}

async function problem(response) {
  if (response.status === 401 || response.status === 403) {
    return "not allowed (" + response.status + "): check the API key";
  }
  try {
    const body = await response.json();
    return (body.error || "error") + ": " + (body.detail || response.status);
  } catch {
    return "HTTP " + response.status;
  }
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function statusBadge(node, status) {
  node.textContent = status;
  node.className = "status status-" + String(status).replace(/[^a-z]/g, "");
  node.dataset.status = status;
}

function formatSize(bytes) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return (unit ? value.toFixed(1) : value) + " " + units[unit];
}

function stem(filename) {
  const dot = filename.lastIndexOf(".");
  return dot > 0 ? filename.slice(0, dot) : filename;
}

function formatTime(iso) {
  return new Date(iso).toLocaleString();
}

function repeat(task) {
  // The next poll is scheduled after this one ends: a slow server is never polled twice.
  const run = async () => {
    const again = await task();
    if (again !== false) setTimeout(run, POLL_MS);
  };
  run();
}

// --- The artifacts page ---------------------------------------------------------------

function upload(file, list) {
  const item = el("li", null, "upload");
  const name = el("span", file.name, "upload-name");
  const bar = el("progress");
  bar.max = 100;
  bar.value = 0;
  const state = el("span", "starting", "upload-state");
  item.append(name, bar, state);
  list.prepend(item);

  const body = new FormData();
  body.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/artifacts");
  for (const [header, value] of Object.entries(authHeaders())) {
    xhr.setRequestHeader(header, value);
  }
  xhr.upload.onprogress = (event) => {
    if (event.lengthComputable) {
      bar.value = Math.round((100 * event.loaded) / event.total);
      state.textContent = bar.value + " %";
    }
  };
  xhr.onload = async () => {
    if (xhr.status === 202) {
      bar.value = 100;
      const accepted = JSON.parse(xhr.responseText);
      state.textContent = "";
      const link = el("a", "uploaded");
      link.href = "/ui/artifacts/" + encodeURIComponent(accepted.id);
      state.append(link);
      item.classList.add("done");
      refreshList();
    } else {
      state.textContent = await problem(
        new Response(xhr.responseText, { status: xhr.status })
      );
      item.classList.add("failed");
    }
  };
  xhr.onerror = () => {
    state.textContent = "network error";
    item.classList.add("failed");
  };
  xhr.send(body);
}

function renderList(items) {
  const tbody = document.querySelector("#artifact-list tbody");
  const rows = items.map((item) => {
    const row = el("tr");
    row.dataset.id = item.id;
    const link = el("a", item.filename);
    link.href = "/ui/artifacts/" + encodeURIComponent(item.id);
    const nameCell = el("td");
    nameCell.append(link);
    const statusCell = el("td");
    const badge = el("span");
    statusBadge(badge, item.status);
    statusCell.append(badge);
    if (item.failure_reason) statusCell.append(" ", el("span", item.failure_reason, "muted"));
    row.append(
      nameCell,
      statusCell,
      el("td", item.mime_type || ""),
      el("td", formatSize(item.size)),
      el("td", formatTime(item.created_at))
    );
    return row;
  });
  tbody.replaceChildren(...rows);
  document.getElementById("empty").hidden = items.length > 0;
}

let refreshList = () => {};

function artifactsPage() {
  const list = document.getElementById("uploads");
  const input = document.getElementById("file-input");
  const zone = document.getElementById("drop-zone");
  const listState = document.getElementById("list-state");

  input.addEventListener("change", () => {
    for (const file of input.files) upload(file, list);
    input.value = "";
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    for (const file of event.dataTransfer.files) upload(file, list);
  });

  // The artifact's page sends the user back here once it deleted one.
  const deleted = new URLSearchParams(location.search).get("deleted");
  if (deleted) {
    const notice = document.getElementById("notice");
    notice.textContent = "Artifact " + deleted + " deleted.";
    notice.hidden = false;
    history.replaceState(null, "", "/");
  }

  const poll = async () => {
    try {
      renderList((await getJson("/artifacts?limit=50")).items);
      listState.textContent = "";
    } catch (err) {
      listState.textContent = "(" + err.message + ")";
    }
  };
  refreshList = poll;
  repeat(poll);
}

// --- The page of one artifact ---------------------------------------------------------

function facts(dl, pairs) {
  dl.replaceChildren();
  for (const [term, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    dl.append(el("dt", term), el("dd", value));
  }
}

function safeHttpUrl(url) {
  // Only http(s) links, whatever the server's settings say: never a javascript: URL.
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

async function download(url, fallbackName) {
  // A plain link would not carry the API key, so the file is fetched and handed over.
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new Error(await problem(response));
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename\*=UTF-8''([^;]+)/.exec(disposition);
  const link = el("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = match ? decodeURIComponent(match[1]) : fallbackName;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function languageName(code) {
  // "English (en)" in the reader's own language, where the browser knows the code.
  try {
    const names = new Intl.DisplayNames([navigator.language || "en"], { type: "language" });
    const name = names.of(code);
    return name && name !== code ? name + " (" + code + ")" : code;
  } catch {
    return code;
  }
}

function renderWarnings(warnings) {
  const box = document.getElementById("warnings");
  box.hidden = warnings.length === 0;
  box.replaceChildren(
    ...warnings.map((warning) => {
      const line = el("p");
      line.dataset.warning = warning;
      line.append(el("strong", warning), " ", WARNINGS[warning] || "");
      return line;
    })
  );
}

function renderPages(pages) {
  const counts = { text: 0, ocr: 0, none: 0 };
  let confidence = 0;
  for (const page of pages) {
    counts[page.source] = (counts[page.source] || 0) + 1;
    if (page.source === "ocr" && page.confidence !== null) confidence += page.confidence;
  }
  const parts = [counts.text + " from the text layer", counts.ocr + " by OCR"];
  if (counts.ocr) parts[1] += " (mean confidence " + (confidence / counts.ocr).toFixed(0) + ")";
  parts.push(counts.none + " with nothing legible");
  document.getElementById("pages-summary").textContent = "(" + parts.join(", ") + ")";
  document.querySelector("#pages tbody").replaceChildren(
    ...pages.map((page) => {
      const row = el("tr");
      row.dataset.source = page.source;
      row.append(
        el("td", page.number),
        el("td", SOURCES[page.source] || page.source, "source-" + page.source),
        el("td", page.confidence === null ? "" : page.confidence.toFixed(1)),
        el("td", page.chars)
      );
      return row;
    })
  );
  document.getElementById("pages-section").hidden = false;
}

function renderArtifact(view) {
  document.title = view.filename + " · Artifacts";
  document.getElementById("filename").textContent = view.filename;
  statusBadge(document.getElementById("status"), view.status);

  const temporal = document.getElementById("temporal-link");
  const temporalUrl = safeHttpUrl(view.links.temporal);
  temporal.hidden = temporalUrl === null;
  if (temporalUrl) temporal.href = temporalUrl;
  temporal.textContent = "Temporal run " + view.workflow_id;

  facts(document.getElementById("facts"), [
    ["id", view.id],
    ["uploaded as", view.content_type],
    ["sniffed type", view.mime_type],
    ["size", formatSize(view.size) + " (" + view.size + " bytes)"],
    ["sha256", view.sha256],
    ["run", view.run],
    ["workflow", view.workflow_id],
    ["created", formatTime(view.created_at)],
    ["updated", formatTime(view.updated_at)],
  ]);

  document.getElementById("failure-section").hidden = !view.failure;
  if (view.failure) {
    const reason = view.failure.reason;
    document.getElementById("failure-reason").textContent =
      reason + (REASONS[reason] ? " (" + REASONS[reason] + ")" : "");
    document.getElementById("failure-message").textContent = view.failure.message;
  }

  document.getElementById("summary-section").hidden = !view.summary;
  if (view.summary) {
    document.getElementById("summary").textContent = view.summary.text;
    document.getElementById("summary-source").textContent =
      view.summary.source + " · " + view.summary.model +
      " · pipeline " + view.summary.pipeline_version;
  }

  document.getElementById("results-section").hidden = !view.results;
  if (view.results) {
    const r = view.results;
    facts(document.getElementById("results"), [
      ["kind", r.kind],
      ["pages", r.page_count],
      ["characters", r.char_count],
      ["language", r.language ? languageName(r.language) : "not detected"],
      ...Object.entries(r.details).map(([key, value]) => [key, String(value)]),
    ]);
  }

  document.getElementById("history").replaceChildren(
    ...view.history.map((entry) => {
      const item = el("li");
      item.append(el("span", entry.type, "event"), " ", el("time", formatTime(entry.at)));
      return item;
    })
  );

  renderWarnings(view.results ? view.results.warnings : []);
  document.getElementById("download-text").hidden = !view.links.text;
  document.getElementById("download-markdown").hidden = !view.links.markdown;
  document.getElementById("download-chunks").hidden = !view.links.chunks;
  if (!view.links.pages) document.getElementById("pages-section").hidden = true;
  document.getElementById("reprocess").hidden = !FINAL_STATUSES.includes(view.status);
  document.getElementById("cancel").hidden = FINAL_STATUSES.includes(view.status);
}

function artifactPage() {
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const url = "/artifacts/" + encodeURIComponent(id);
  const error = document.getElementById("error");
  let view = null;

  const showError = (err) => {
    error.textContent = err.message;
    error.hidden = false;
  };
  document.getElementById("download-content").addEventListener("click", () =>
    download(url + "/content", view ? view.filename : "artifact").catch(showError)
  );
  document.getElementById("download-text").addEventListener("click", () =>
    download(url + "/text", "text.txt").catch(showError)
  );
  document.getElementById("download-markdown").addEventListener("click", () =>
    download(url + "/markdown", "document.md").catch(showError)
  );
  document.getElementById("download-chunks").addEventListener("click", () =>
    download(url + "/chunks", stem(view ? view.filename : "document") + ".chunks.json").catch(
      showError
    )
  );
  document.getElementById("reprocess").addEventListener("click", async () => {
    const response = await fetch(url + "/reprocess", { method: "POST", headers: authHeaders() });
    if (!response.ok) return showError(new Error(await problem(response)));
    repeat(poll);
  });

  document.getElementById("cancel").addEventListener("click", async () => {
    const response = await fetch(url + "/cancel", { method: "POST", headers: authHeaders() });
    if (!response.ok) return showError(new Error(await problem(response)));
  });

  // Delete: confirmed on the page itself (no window.confirm: the page opens no dialogs).
  let deleting = false;
  const deletion = document.getElementById("deletion");
  const confirmBox = document.getElementById("delete-confirm");
  const erased = () => {
    deletion.textContent = "This artifact was erased.";
    deletion.hidden = false;
    for (const button of document.querySelectorAll("section button")) button.hidden = true;
  };
  const backToList = () => location.assign("/?deleted=" + encodeURIComponent(id));
  document.getElementById("delete").addEventListener("click", () => {
    confirmBox.hidden = false;
  });
  document.getElementById("delete-no").addEventListener("click", () => {
    confirmBox.hidden = true;
  });
  document.getElementById("delete-yes").addEventListener("click", async () => {
    confirmBox.hidden = true;
    deleting = true;
    const response = await fetch(url, { method: "DELETE", headers: authHeaders() });
    if (response.status === 204) return backToList();
    if (response.status === 410) return erased();
    if (response.status !== 202) {
      deleting = false;
      return showError(new Error(await problem(response)));
    }
    // Its run is being cancelled; the erasure completes when it has stopped.
    deletion.textContent = "Erasing: the run is being cancelled…";
    deletion.hidden = false;
    repeat(async () => {
      const check = await fetch(url, { headers: authHeaders(), cache: "no-store" });
      // 410 artifact_erasing: served no more while its run stops; gone once erased.
      const erasing =
        check.status === 410 && (await check.json()).error === "artifact_erasing";
      if (check.status === 404 || (check.status === 410 && !erasing)) {
        backToList();
        return false;
      }
      return true;
    });
  });

  // The page facts of the run shown, fetched once it has them.
  let pagesOfRun = null;
  const showPages = async () => {
    if (!view.links.pages || pagesOfRun === view.run) return;
    pagesOfRun = view.run;
    renderPages(await getJson(view.links.pages));
  };

  const poll = async () => {
    if (deleting) return false;
    try {
      view = await getJson(url);
      if (deleting) return false;
      error.hidden = true;
      renderArtifact(view);
      if (!view.links.pages) pagesOfRun = null;
      await showPages();
      // Keep watching until the run is over; a finished artifact changes only on request.
      return !FINAL_STATUSES.includes(view.status);
    } catch (err) {
      if (err.status === 410) {
        erased();
        return false;
      }
      showError(err);
      return err.status !== 404; // an unknown artifact will not appear by waiting
    }
  };
  repeat(poll);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpApiKeyField();
  if (document.body.dataset.page === "artifacts") artifactsPage();
  else artifactPage();
});
