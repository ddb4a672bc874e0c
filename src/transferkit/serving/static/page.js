// The try-the-model page: reads GET metadata, posts inputs to POST predict, draws the answer with probability bars.
// Everything is built with textContent (never innerHTML), so model labels and inputs cannot inject markup.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const FILE_MODALITIES = { image: "image/*", audio: "audio/*" };
  let meta = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  async function api(path, options) {
    const response = await fetch(path, options);
    let body = null;
    try {
      body = await response.json();
    } catch (ignored) {
      body = null;
    }
    if (!response.ok) {
      throw new Error(body && body.detail ? body.detail : `HTTP ${response.status}`);
    }
    return body;
  }

  function describe(m) {
    $("model-name").textContent = m.name;
    document.title = `${m.name} · transferkit`;
    const parts = [`${m.task} on ${m.modality}`, `backbone ${m.backbone}`];
    if (m.strategy) parts.push(`strategy ${m.strategy}`);
    if (m.labels.length) parts.push(`${m.labels.length} labels: ${m.labels.slice(0, 12).join(", ")}${m.labels.length > 12 ? ", …" : ""}`);
    parts.push(`transferkit ${m.version.transferkit}`);
    $("model-info").textContent = parts.join(" · ");
  }

  function showMetrics(metrics) {
    const table = $("metrics");
    for (const [split, values] of Object.entries(metrics || {})) {
      if (!values || typeof values !== "object") continue;
      for (const [name, value] of Object.entries(values)) {
        if (typeof value !== "number") continue;
        const row = el("tr");
        row.append(el("td", "", split), el("td", "", name), el("td", "num", name === "n" ? String(value) : value.toFixed(4)));
        table.append(row);
      }
    }
    $("metrics-section").hidden = table.rows.length === 0;
  }

  function setupInput(modality) {
    const accept = FILE_MODALITIES[modality];
    if (accept) {
      $("text-input").hidden = true;
      $("file-input").hidden = false;
      $("file-input").accept = accept;
      $("input-label").htmlFor = "file-input";
      $("input-label").textContent = `Choose ${modality} file(s)`;
      $("file-input").addEventListener("change", showPreviews);
    } else if (modality === "vector") {
      $("input-label").textContent = `Feature values: ${meta.features || "comma-separated"} numbers, one row per line`;
      $("text-input").placeholder = "0.5, 1.2, -3.0";
    }
  }

  function showPreviews() {
    const box = $("previews");
    box.replaceChildren();
    for (const file of $("file-input").files) {
      const media = el(meta.modality === "image" ? "img" : "audio");
      media.src = URL.createObjectURL(file);
      if (meta.modality === "audio") media.controls = true;
      else media.alt = file.name;
      box.append(media);
    }
  }

  function buildRequest() {
    if (FILE_MODALITIES[meta.modality]) {
      const files = Array.from($("file-input").files);
      if (!files.length) throw new Error(`Choose a ${meta.modality} file first.`);
      const form = new FormData();
      for (const file of files) form.append("files", file, file.name);
      return { shown: files.map((f) => f.name), options: { method: "POST", body: form } };
    }
    const value = $("text-input").value;
    if (!value.trim()) throw new Error("Type an example first.");
    let inputs = [value];
    if (meta.modality === "vector") {
      inputs = value.split("\n").filter((line) => line.trim()).map((line) => line.split(/[,;\s]+/).filter(Boolean).map(Number));
    }
    const headers = { "Content-Type": "application/json" };
    const shown = meta.modality === "vector" ? inputs.map((row) => row.join(", ")) : inputs;
    return { shown, options: { method: "POST", headers, body: JSON.stringify({ inputs }) } };
  }

  function bar(label, probability, chosen) {
    const row = el("div", chosen ? "row chosen" : "row");
    const track = el("div", "bar");
    const fill = el("div", "fill");
    fill.style.width = `${(probability * 100).toFixed(1)}%`; // CSSOM, allowed by the page's style-src 'self'
    track.append(fill);
    row.append(el("span", "name", String(label)), track, el("span", "p", `${(probability * 100).toFixed(1)}%`));
    row.title = `${label}: ${probability}`;
    return row;
  }

  function render(task, predictions, shown) {
    const box = $("results");
    box.replaceChildren();
    predictions.forEach((prediction, i) => {
      const card = el("article", "prediction");
      card.append(el("div", "input", shown[i]));
      if (task === "regression") {
        card.append(el("div", "answer", Number(prediction.value).toPrecision(6)));
      } else if (task === "multilabel") {
        const chosen = new Set(prediction.labels.map(String));
        card.append(el("div", "answer", prediction.labels.length ? prediction.labels.join(", ") : "(no label)"));
        for (const item of prediction.top) card.append(bar(item.label, item.probability, chosen.has(String(item.label))));
      } else {
        const answer = el("div", "answer", String(prediction.label));
        answer.dataset.label = String(prediction.label);
        card.append(answer);
        for (const item of prediction.top) card.append(bar(item.label, item.probability, item.label === prediction.label));
      }
      box.append(card);
    });
  }

  async function submit(event) {
    event.preventDefault();
    let request;
    try {
      request = buildRequest();
    } catch (problem) {
      setStatus(problem.message, true);
      return;
    }
    $("submit").disabled = true;
    document.body.dataset.state = "predicting";
    setStatus("Predicting…", false);
    try {
      const started = performance.now();
      const result = await api("predict", request.options);
      render(result.task, result.predictions, request.shown);
      setStatus(`Done in ${Math.round(performance.now() - started)} ms.`, false);
      document.body.dataset.state = "done";
    } catch (problem) {
      setStatus(problem.message, true);
      document.body.dataset.state = "error";
    } finally {
      $("submit").disabled = false;
    }
  }

  async function init() {
    try {
      meta = await api("metadata");
    } catch (problem) {
      setStatus(`Cannot read the model's description: ${problem.message}`, true);
      document.body.dataset.state = "error";
      return;
    }
    describe(meta);
    showMetrics(meta.metrics);
    setupInput(meta.modality);
    $("predict-form").addEventListener("submit", submit);
    $("submit").disabled = false;
    document.body.dataset.state = "ready";
  }

  init();
})();
