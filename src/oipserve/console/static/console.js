// The oipserve console: plain JavaScript over the server's own /v2 API (no framework, no build).
// Server data is written with textContent only. An API key, when the server asks for one, lives in
// the variable below and nowhere else (not the URL, not storage, not a cookie).
"use strict";

(() => {
  let apiKey = null;
  let keyPrompt = null; // the pending "ask for the key" promise, shared by concurrent calls
  let settings = { repository_changes: false };
  let selected = null; // { name, timer, last, rates }
  let indexRows = [];

  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1000;
  const INDEX_MS = 5000;

  class ServerError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function showBanner(message) {
    const banner = $("banner");
    banner.textContent = message;
    banner.hidden = !message;
  }

  function askForKey(reason) {
    if (!keyPrompt) {
      keyPrompt = new Promise((resolve) => {
        const form = $("key-form");
        form.hidden = false;
        showBanner(reason || "This server needs an API key.");
        $("key-input").focus();
        form.onsubmit = (event) => {
          event.preventDefault();
          apiKey = $("key-input").value;
          $("key-input").value = "";
          form.hidden = true;
          showBanner("");
          keyPrompt = null;
          resolve();
        };
      });
    }
    return keyPrompt;
  }

  // Every request of the page goes through here: the key when there is one, JSON both ways,
  // {"error": ...} bodies turned into a ServerError carrying the server's own message.
  async function api(method, path, body, okStatuses) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const headers = {};
      if (apiKey) headers.Authorization = "Bearer " + apiKey;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      let response;
      try {
        response = await fetch(path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          cache: "no-store",
        });
      } catch (error) {
        throw new ServerError(0, "cannot reach the server: " + error.message);
      }
      const text = await response.text();
      let data = null;
      try {
        data = text ? JSON.parse(text) : null;
      } catch (error) {
        data = null;
      }
      if (response.status === 401 || response.status === 403) {
        const why = (data && (data.error || data.detail)) || "This server needs an API key.";
        await askForKey(why);
        continue;
      }
      if (!response.ok && !(okStatuses || []).includes(response.status)) {
        const message = (data && (data.error || data.detail)) || text || response.statusText;
        throw new ServerError(response.status, message);
      }
      return { status: response.status, data };
    }
    throw new ServerError(401, "the API key was refused");
  }

  const modelPath = (name) => "/v2/models/" + encodeURIComponent(name);

  // -- the server and its models ---------------------------------------------------------------

  async function refreshServer() {
    const metadata = (await api("GET", "/v2")).data;
    $("server-info").textContent = metadata.name + " " + metadata.version;
    const ready = await api("GET", "/v2/health/ready", undefined, [503]);
    const badge = $("server-ready");
    badge.textContent = ready.status === 200 ? "ready" : "not ready";
    badge.className = "badge " + (ready.status === 200 ? "ok" : "bad");
  }

  // Rows are kept and updated in place (keyed by model), so a button never vanishes under the
  // pointer when the index is polled again.
  async function refreshModels() {
    indexRows = (await api("POST", "/v2/repository/index", {})).data || [];
    const body = $("models").tBodies[0];
    const existing = new Map([...body.rows].map((row) => [row.dataset.model, row]));
    indexRows.forEach((entry, position) => {
      let row = existing.get(entry.name);
      existing.delete(entry.name);
      if (!row) row = newModelRow(entry.name);
      if (body.rows[position] !== row) body.insertBefore(row, body.rows[position] || null);
      const [, version, state, reason] = row.cells;
      version.textContent = entry.version || "–";
      const badge = state.firstChild;
      badge.textContent = entry.state || "–";
      badge.className = "state state-" + (entry.state || "none");
      reason.textContent = entry.reason || "";
      const button = row.querySelector("button");
      if (button) {
        const ready = entry.state === "READY";
        button.textContent = ready ? "Unload" : "Load";
        button.className = ready ? "secondary" : "";
        button.dataset.action = ready ? "unload" : "load";
      }
      row.classList.toggle("selected", Boolean(selected && selected.name === entry.name));
    });
    for (const row of existing.values()) row.remove();
  }

  function newModelRow(name) {
    const row = el("tr");
    row.dataset.model = name;
    const state = el("td");
    state.append(el("span", "", "state"));
    row.append(el("td", name), el("td"), state, el("td", "", "muted"));
    const actions = el("td");
    if (settings.repository_changes) {
      const button = el("button", "");
      button.type = "button";
      button.onclick = (event) => {
        event.stopPropagation();
        changeModel(name, button.dataset.action, button);
      };
      actions.append(button);
    }
    row.append(actions);
    row.onclick = () => select(name);
    return row;
  }

  async function changeModel(name, action, button) {
    button.disabled = true;
    try {
      await api("POST", "/v2/repository/models/" + encodeURIComponent(name) + "/" + action, {});
      showBanner("");
    } catch (error) {
      showBanner(action + " " + name + ": " + error.message);
    }
    await refreshModels().catch((error) => showBanner(error.message));
    button.disabled = false;
    if (selected && selected.name === name) await select(name);
  }

  // -- one model --------------------------------------------------------------------------------

  function stopPolling() {
    if (selected && selected.timer) clearInterval(selected.timer);
  }

  async function select(name) {
    stopPolling();
    selected = { name, timer: null, last: null, rates: [] };
    for (const row of $("models").tBodies[0].rows) {
      row.classList.toggle("selected", row.dataset.model === name);
    }
    $("detail").hidden = false;
    $("detail-title").textContent = name;
    $("try-result").hidden = true;
    $("try-error").hidden = true;
    $("tensors").tBodies[0].replaceChildren();
    $("try-inputs").replaceChildren();
    $("config").textContent = "";
    for (const id of ["rate", "latency", "total", "failed"]) $(id).textContent = "–";
    drawSpark([]);
    const entry = indexRows.find((e) => e.name === name);
    if (entry && entry.state && entry.state !== "READY") {
      showDetailError(name + " is " + entry.state + (entry.reason ? ": " + entry.reason : ""));
      $("try-send").disabled = true;
      return;
    }
    $("try-send").disabled = false;
    try {
      const metadata = (await api("GET", modelPath(name))).data;
      showMetadata(metadata);
      buildTryForm(metadata);
      const config = await api("GET", modelPath(name) + "/config", undefined, [400, 404, 501]);
      $("config").textContent = config.status === 200
        ? JSON.stringify(config.data, null, 2)
        : "(no configuration: " + ((config.data && config.data.error) || config.status) + ")";
    } catch (error) {
      showDetailError(error.message);
      return;
    }
    await pollStatistics();
    selected.timer = setInterval(pollStatistics, POLL_MS);
  }

  function showDetailError(message) {
    const box = $("try-error");
    box.textContent = message;
    box.hidden = false;
  }

  function showMetadata(metadata) {
    const body = $("tensors").tBodies[0];
    body.replaceChildren();
    const rows = [
      ...metadata.inputs.map((t) => ["input", t]),
      ...metadata.outputs.map((t) => ["output", t]),
    ];
    for (const [kind, tensor] of rows) {
      const row = el("tr");
      row.append(
        el("td", kind, "muted"),
        el("td", tensor.name),
        el("td", tensor.datatype),
        el("td", JSON.stringify(tensor.shape)),
      );
      body.append(row);
    }
    const versions = (metadata.versions || []).join(", ");
    $("detail-title").textContent =
      metadata.name + (versions ? " — versions " + versions : "") +
      (metadata.platform ? " — " + metadata.platform : "");
  }

  // -- live figures from the statistics extension -----------------------------------------------

  async function pollStatistics() {
    const current = selected;
    if (!current) return;
    let data;
    try {
      data = (await api("GET", modelPath(current.name) + "/stats")).data;
    } catch (error) {
      stopPolling();
      showDetailError("statistics: " + error.message);
      return;
    }
    if (current !== selected) return;
    let count = 0;
    let ns = 0;
    let failed = 0;
    for (const version of data.model_stats || []) {
      const stats = version.inference_stats || {};
      count += Number((stats.success || {}).count || 0);
      ns += Number((stats.success || {}).ns || 0);
      failed += Number((stats.fail || {}).count || 0);
    }
    const now = performance.now();
    if (current.last) {
      const seconds = (now - current.last.time) / 1000;
      const done = count - current.last.count;
      const rate = seconds > 0 ? done / seconds : 0;
      current.rates.push(rate);
      if (current.rates.length > 60) current.rates.shift();
      $("rate").textContent = rate.toFixed(1);
      if (done > 0) $("latency").textContent = ((ns - current.last.ns) / done / 1e6).toFixed(3);
      drawSpark(current.rates);
    }
    current.last = { time: now, count, ns };
    $("total").textContent = count;
    $("failed").textContent = failed;
  }

  function drawSpark(values) {
    const canvas = $("spark");
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (values.length < 2) return;
    const top = Math.max(...values, 1);
    context.strokeStyle = "#2f5fb3";
    context.lineWidth = 2;
    context.beginPath();
    values.forEach((value, index) => {
      const x = (index / 59) * (canvas.width - 4) + 2;
      const y = canvas.height - 3 - (value / top) * (canvas.height - 6);
      if (index === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
  }

  // -- try it -----------------------------------------------------------------------------------

  function exampleData(tensor) {
    const fill = tensor.datatype === "BYTES" ? "example" : tensor.datatype === "BOOL" ? true : 1;
    const dims = tensor.shape.map((d) => (d < 0 ? 1 : d));
    const build = (level) =>
      level === dims.length ? fill : Array.from({ length: dims[level] }, () => build(level + 1));
    return build(0);
  }

  function buildTryForm(metadata) {
    const holder = $("try-inputs");
    holder.replaceChildren();
    for (const tensor of metadata.inputs) {
      const block = el("div", undefined, "try-input");
      const label = el("label", tensor.name + " (" + tensor.datatype + ", shape " +
        JSON.stringify(tensor.shape) + ")");
      const area = el("textarea");
      area.name = tensor.name;
      area.dataset.datatype = tensor.datatype;
      area.value = JSON.stringify(exampleData(tensor));
      area.id = "try-" + tensor.name;
      label.htmlFor = area.id;
      block.append(label, area);
      holder.append(block);
    }
  }

  function shapeOf(value) {
    const shape = [];
    while (Array.isArray(value)) {
      shape.push(value.length);
      value = value[0];
    }
    return shape;
  }

  async function sendTry(event) {
    event.preventDefault();
    if (!selected) return;
    const name = selected.name;
    const error = $("try-error");
    const table = $("try-result");
    error.hidden = true;
    table.hidden = true;
    const inputs = [];
    for (const area of $("try-inputs").querySelectorAll("textarea")) {
      let data;
      try {
        data = JSON.parse(area.value);
      } catch (problem) {
        showDetailError("input " + area.name + " is not JSON: " + problem.message);
        return;
      }
      if (!Array.isArray(data)) data = [data];
      inputs.push({ name: area.name, datatype: area.dataset.datatype, shape: shapeOf(data), data });
    }
    $("try-send").disabled = true;
    try {
      const response = (await api("POST", modelPath(name) + "/infer", { inputs })).data;
      const body = table.tBodies[0];
      body.replaceChildren();
      for (const output of response.outputs || []) {
        const row = el("tr");
        row.dataset.output = output.name;
        row.append(
          el("td", output.name),
          el("td", output.datatype),
          el("td", JSON.stringify(output.shape)),
          el("td", JSON.stringify(output.data), "data"),
        );
        body.append(row);
      }
      table.hidden = false;
    } catch (problem) {
      showDetailError(problem.status ? "HTTP " + problem.status + ": " + problem.message
        : problem.message);
    } finally {
      $("try-send").disabled = false;
    }
  }

  // -- start ------------------------------------------------------------------------------------

  async function start() {
    $("try-form").addEventListener("submit", sendTry);
    try {
      settings = (await api("GET", "/console/settings.json")).data || settings;
      await refreshServer();
      await refreshModels();
      showBanner("");
    } catch (error) {
      showBanner("The server answered with an error: " + error.message);
    }
    setInterval(() => {
      Promise.all([refreshServer(), refreshModels()])
        .then(() => showBanner(""))
        .catch((error) => showBanner("The server answered with an error: " + error.message));
    }, INDEX_MS);
  }

  start();
})();
