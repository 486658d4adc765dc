// Sutra web client: plain browser JavaScript, no build step, no third-party code.
"use strict";

// The API is another origin (port 8000 on the same host by default); a deployment behind a
// single hostname can set window.SUTRA_API_URL before this script runs.
const API_URL = (window.SUTRA_API_URL || `${location.protocol}//${location.hostname}:8000`)
  .replace(/\/+$/, "");

async function callApi(path, payload) {
  let response;
  try {
    response = await fetch(`${API_URL}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
  } catch (err) {
    throw new Error(`cannot reach the API at ${API_URL} (${err.message})`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}: ${describeError(body)}`);
  }
  return body;
}

// FastAPI answers {"detail": "..."} or, for validation errors, {"detail": [{msg, loc}, ...]}.
function describeError(body) {
  if (!body || body.detail === undefined) return "unexpected response";
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  return JSON.stringify(body.detail);
}

function setStatus(element, text, isError) {
  element.textContent = text;
  element.classList.toggle("error", Boolean(isError));
}

function renderResults(list, results) {
  list.replaceChildren();
  for (const hit of results) {
    const item = document.createElement("li");
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = Number(hit.score).toFixed(4);
    const content = document.createElement("span");
    content.className = "content";
    content.textContent = hit.content; // textContent: stored facts are never parsed as HTML
    item.append(score, content);
    list.append(item);
  }
}

function init() {
  document.getElementById("api-url").textContent = API_URL;

  const learnForm = document.getElementById("learn-form");
  const learnContent = document.getElementById("learn-content");
  const learnStatus = document.getElementById("learn-status");
  learnForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = learnForm.querySelector("button");
    button.disabled = true;
    setStatus(learnStatus, "Learning…");
    try {
      const { id } = await callApi("/learn", { content: learnContent.value });
      setStatus(learnStatus, `Learned (id ${id}).`);
      learnContent.value = "";
    } catch (err) {
      setStatus(learnStatus, err.message, true);
    } finally {
      button.disabled = false;
    }
  });

  const queryForm = document.getElementById("query-form");
  const queryText = document.getElementById("query-text");
  const queryLimit = document.getElementById("query-limit");
  const queryStatus = document.getElementById("query-status");
  const results = document.getElementById("results");
  queryForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = queryForm.querySelector("button");
    button.disabled = true;
    setStatus(queryStatus, "Searching…");
    try {
      const limit = Math.min(50, Math.max(1, parseInt(queryLimit.value, 10) || 5));
      const body = await callApi("/query", { query: queryText.value, limit });
      renderResults(results, body.results);
      setStatus(queryStatus, body.results.length ? `${body.results.length} result(s).` : "No match.");
    } catch (err) {
      results.replaceChildren();
      setStatus(queryStatus, err.message, true);
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", init);
