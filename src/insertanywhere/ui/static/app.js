// InsertAnywhere placement page: vanilla JS, no build step.
// The box is kept in video pixels (x right, y down, origin at the top-left corner: docs/design.md),
// the canvas shows a display copy of the frame, scaled.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  config: null,
  video: null, // {video_id, width, height, n_frames, fps, name, display_width, display_height}
  object: null, // {object_id, kind, name, thumb_width, thumb_height}
  frame: 0,
  yaw: 0,
  box: null, // [x0, y0, x1, y1] in video pixels
  frameImages: new Map(),
  thumb: null, // HTMLImageElement of the object (turned by yaw for meshes)
  drag: null,
  preview: { inFlight: false, pending: false, timer: null, seq: 0 },
  run: null,
  pollTimer: null,
};

// ------------------------------------------------------------------ API

async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: {} };
  if (init.method !== "GET") init.headers["X-InsertAnywhere"] = "1";
  if (options.json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  } else if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/octet-stream";
    init.body = options.body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new Error("the page's server cannot be reached; is `insertanywhere ui` still running?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const message = data && data.error ? data.error : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

function megabytes(bytes) {
  return `${(bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 1 : 0)} MiB`;
}

// ------------------------------------------------------------------ loading inputs

async function uploadFile(kind, file) {
  const limit = state.config.limits.max_upload_bytes;
  if (file.size > limit) {
    throw new Error(`${file.name}: ${megabytes(file.size)} is over the upload limit of ${megabytes(limit)}`);
  }
  return api(`/api/${kind}?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
}

async function onVideoFile(event) {
  const file = event.target.files[0];
  if (!file) return;
  clearError();
  $("video-info").textContent = `uploading ${file.name} (${megabytes(file.size)})… then reading its frames`;
  try {
    setVideo(await uploadFile("videos", file));
  } catch (err) {
    $("video-info").textContent = state.video ? describeVideo(state.video) : "no video yet";
    showError(err.message);
  } finally {
    event.target.value = "";
  }
}

async function onObjectFile(event) {
  const file = event.target.files[0];
  if (!file) return;
  clearError();
  $("object-info").textContent = `uploading ${file.name}…`;
  try {
    await setObject(await uploadFile("objects", file));
  } catch (err) {
    $("object-info").textContent = state.object ? describeObject(state.object) : "no object yet";
    showError(err.message);
  } finally {
    event.target.value = "";
  }
}

function describeVideo(video) {
  return `${video.name}: ${video.width}×${video.height}, ${video.n_frames} frames at ${Number(video.fps).toFixed(2)} fps`;
}

function describeObject(object) {
  return `${object.name}: ${object.kind === "mesh" ? "mesh" : "RGBA image"}`;
}

function setVideo(video) {
  state.video = video;
  state.frameImages.clear();
  state.frame = Math.min(state.frame, video.n_frames - 1);
  $("stage").classList.add("has-video");
  resizeCanvas();
  $("video-info").textContent = describeVideo(video);
  const slider = $("frame");
  slider.max = String(video.n_frames - 1);
  slider.value = String(state.frame);
  slider.disabled = false;
  $("yaw").disabled = false;
  if (state.box && !boxInside(state.box)) state.box = null;
  ensureDefaultBox();
  showFrame(state.frame);
  updateBoxLabel();
  updateControls();
  schedulePreview();
}

async function setObject(object) {
  state.object = object;
  $("object-info").textContent = describeObject(object);
  await loadThumb();
  const thumb = $("object-thumb");
  thumb.src = thumbUrl();
  thumb.hidden = false;
  ensureDefaultBox();
  updateControls();
  draw();
  schedulePreview();
}

function thumbUrl() {
  const yaw = state.object.kind === "mesh" ? state.yaw : 0;
  return `/api/objects/${state.object.object_id}/thumb?yaw_deg=${yaw}`;
}

function loadThumb() {
  return new Promise((resolve) => {
    const image = new Image();
    image.onload = () => {
      state.thumb = image;
      draw();
      resolve();
    };
    image.onerror = () => resolve();
    image.src = thumbUrl();
  });
}

// ------------------------------------------------------------------ library

async function loadLibrary() {
  try {
    const library = await api("/api/library");
    const select = $("library");
    select.textContent = "";
    const groups = [
      ["cases", "case"],
      ["videos", "video"],
      ["objects", "object"],
    ];
    let count = 0;
    for (const [key, label] of groups) {
      for (const entry of library[key]) {
        const option = document.createElement("option");
        option.value = entry.path;
        option.textContent = `${label}: ${entry.name}`;
        select.appendChild(option);
        count += 1;
      }
    }
    if (count === 0) {
      const option = document.createElement("option");
      option.value = "";
      option.textContent = "(library is empty)";
      select.appendChild(option);
    }
    $("library-open").disabled = count === 0;
    $("library-hint").textContent =
      count === 0
        ? `put videos, objects or case folders (insertanywhere synth …) into ${library.folder}`
        : `from ${library.folder}`;
  } catch (err) {
    showError(err.message);
  }
}

async function openLibraryEntry() {
  const path = $("library").value;
  if (!path) return;
  clearError();
  $("library-open").disabled = true;
  $("library-hint").textContent = `opening ${path}…`;
  try {
    const opened = await api("/api/library/open", { method: "POST", json: { path } });
    if (opened.placement) {
      state.frame = opened.placement.frame;
      state.box = opened.placement.box;
      state.yaw = opened.placement.yaw_deg;
      $("yaw").value = String(Math.round(state.yaw));
      $("yaw-label").textContent = `${Math.round(state.yaw)}°`;
    }
    if (opened.video) setVideo(opened.video);
    if (opened.object) await setObject(opened.object);
    $("library-hint").textContent = `opened ${path}`;
  } catch (err) {
    showError(err.message);
    $("library-hint").textContent = "";
  } finally {
    $("library-open").disabled = false;
  }
}

// ------------------------------------------------------------------ frames and drawing

function frameImage(index) {
  let image = state.frameImages.get(index);
  if (!image) {
    image = new Image();
    image.onload = () => {
      if (index === state.frame) draw();
    };
    image.src = `/api/videos/${state.video.video_id}/frames/${index}`;
    state.frameImages.set(index, image);
  }
  return image;
}

function showFrame(index) {
  state.frame = index;
  $("frame-label").textContent = `${index} / ${state.video.n_frames - 1}`;
  frameImage(index);
  if (index + 1 < state.video.n_frames) frameImage(index + 1); // prefetch for smooth scrubbing
  draw();
}

function resizeCanvas() {
  // The canvas backing store matches its on-screen size (times the pixel ratio), so the box and its
  // handles stay crisp whatever the video's size; the frame image is scaled into it.
  if (!state.video) return;
  const canvas = $("canvas");
  const aspect = state.video.width / state.video.height;
  let cssWidth = $("stage").clientWidth;
  let cssHeight = cssWidth / aspect;
  const maxHeight = Math.max(240, window.innerHeight * 0.66);
  if (cssHeight > maxHeight) {
    cssHeight = maxHeight;
    cssWidth = cssHeight * aspect;
  }
  const ratio = window.devicePixelRatio || 1;
  canvas.style.width = `${Math.round(cssWidth)}px`;
  canvas.style.height = `${Math.round(cssHeight)}px`;
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  draw();
}

function videoToCanvas() {
  return state.video ? $("canvas").width / state.video.width : 1;
}

function draw() {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.video) return;
  const image = state.frameImages.get(state.frame);
  ctx.imageSmoothingQuality = "high";
  if (image && image.complete && image.naturalWidth) ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  if (!state.box) return;
  const s = videoToCanvas();
  const [x0, y0, x1, y1] = state.box.map((v) => v * s);
  // Dim the rest of the frame so the box reads at a glance.
  ctx.fillStyle = "rgba(10, 14, 24, 0.35)";
  ctx.beginPath();
  ctx.rect(0, 0, canvas.width, canvas.height);
  ctx.rect(x0, y0, x1 - x0, y1 - y0);
  ctx.fill("evenodd");
  if (state.thumb && state.thumb.naturalWidth) {
    // The object drawn into its box, bottom-centred: an instant stand-in until the composite arrives.
    const boxW = x1 - x0;
    const boxH = y1 - y0;
    const aspect = state.thumb.naturalWidth / state.thumb.naturalHeight;
    let w = boxW;
    let h = boxW / aspect;
    if (h > boxH) {
      h = boxH;
      w = boxH * aspect;
    }
    ctx.globalAlpha = 0.8;
    ctx.drawImage(state.thumb, x0 + (boxW - w) / 2, y1 - h, w, h);
    ctx.globalAlpha = 1;
  }
  const ratio = window.devicePixelRatio || 1;
  ctx.lineWidth = 2 * ratio;
  ctx.strokeStyle = "#ffb020";
  ctx.setLineDash([]);
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  // Contact point: the bottom centre of the box is where the object touches its support.
  ctx.fillStyle = "#ffb020";
  ctx.beginPath();
  ctx.arc((x0 + x1) / 2, y1, 4 * ratio, 0, 2 * Math.PI);
  ctx.fill();
  const handle = handleSize();
  ctx.fillStyle = "#ffffff";
  ctx.lineWidth = 1.5 * ratio;
  for (const [hx, hy] of [
    [x0, y0],
    [x1, y0],
    [x0, y1],
    [x1, y1],
  ]) {
    ctx.fillRect(hx - handle / 2, hy - handle / 2, handle, handle);
    ctx.strokeRect(hx - handle / 2, hy - handle / 2, handle, handle);
  }
}

function handleSize() {
  const canvas = $("canvas");
  const cssToCanvas = canvas.width / canvas.getBoundingClientRect().width || 1;
  return 10 * cssToCanvas;
}

// ------------------------------------------------------------------ box editing (pointer)

function pointerVideoXY(event) {
  const canvas = $("canvas");
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * state.video.width;
  const y = ((event.clientY - rect.top) / rect.height) * state.video.height;
  return [clamp(x, 0, state.video.width), clamp(y, 0, state.video.height)];
}

function clamp(value, lo, hi) {
  return Math.min(hi, Math.max(lo, value));
}

function hitTest([x, y]) {
  if (!state.box) return null;
  const tolerance = handleSize() / videoToCanvas();
  const [x0, y0, x1, y1] = state.box;
  const corners = { nw: [x0, y0], ne: [x1, y0], sw: [x0, y1], se: [x1, y1] };
  for (const [name, [cx, cy]] of Object.entries(corners)) {
    if (Math.abs(x - cx) <= tolerance && Math.abs(y - cy) <= tolerance) return name;
  }
  if (x > x0 && x < x1 && y > y0 && y < y1) return "move";
  return null;
}

function onPointerDown(event) {
  if (!state.video) return;
  event.preventDefault();
  const point = pointerVideoXY(event);
  const hit = hitTest(point);
  $("canvas").setPointerCapture(event.pointerId);
  if (hit) {
    state.drag = { mode: hit, start: point, box: state.box.slice() };
  } else {
    state.drag = { mode: "new", start: point, box: [point[0], point[1], point[0], point[1]], previous: state.box };
  }
}

function onPointerMove(event) {
  if (!state.video) return;
  const point = pointerVideoXY(event);
  if (!state.drag) {
    const hit = hitTest(point);
    const cursors = { nw: "nwse-resize", se: "nwse-resize", ne: "nesw-resize", sw: "nesw-resize", move: "move" };
    $("canvas").style.cursor = cursors[hit] || "crosshair";
    return;
  }
  const { mode, start, box } = state.drag;
  const W = state.video.width;
  const H = state.video.height;
  let [x0, y0, x1, y1] = box;
  if (mode === "new") {
    [x0, x1] = [Math.min(start[0], point[0]), Math.max(start[0], point[0])];
    [y0, y1] = [Math.min(start[1], point[1]), Math.max(start[1], point[1])];
  } else if (mode === "move") {
    const dx = clamp(point[0] - start[0], -x0, W - x1);
    const dy = clamp(point[1] - start[1], -y0, H - y1);
    [x0, y0, x1, y1] = [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
  } else {
    if (mode.includes("w")) x0 = point[0];
    if (mode.includes("e")) x1 = point[0];
    if (mode.includes("n")) y0 = point[1];
    if (mode.includes("s")) y1 = point[1];
    [x0, x1] = [Math.min(x0, x1), Math.max(x0, x1)];
    [y0, y1] = [Math.min(y0, y1), Math.max(y0, y1)];
  }
  state.box = [x0, y0, x1, y1];
  updateBoxLabel();
  draw();
}

function onPointerUp() {
  if (!state.drag) return;
  const [x0, y0, x1, y1] = state.box;
  const minSide = 4;
  if (x1 - x0 < minSide || y1 - y0 < minSide) {
    state.box = state.drag.mode === "new" ? state.drag.previous || null : state.drag.box;
  }
  state.drag = null;
  state.box = state.box ? roundBox(state.box) : null;
  updateBoxLabel();
  updateControls();
  draw();
  schedulePreview();
}

function roundBox(box) {
  return box.map((v) => Math.round(v * 10) / 10);
}

function boxInside(box) {
  const [x0, y0, x1, y1] = box;
  return x0 >= 0 && y0 >= 0 && x1 <= state.video.width && y1 <= state.video.height && x1 - x0 >= 2 && y1 - y0 >= 2;
}

function ensureDefaultBox() {
  if (state.box || !state.video || !state.object) return;
  // A first guess the user adjusts: a third of the frame high, standing in the lower middle.
  const W = state.video.width;
  const H = state.video.height;
  const aspect = state.object.thumb_width / state.object.thumb_height || 1;
  const h = H / 3;
  const w = Math.min(W * 0.8, h * aspect);
  const cx = W / 2;
  const bottom = H * 0.85;
  state.box = roundBox([cx - w / 2, bottom - h, cx + w / 2, bottom]);
  updateBoxLabel();
}

function fitBoxToObject() {
  if (!state.box || !state.thumb) return;
  const [x0, y0, x1, y1] = state.box;
  const aspect = state.thumb.naturalWidth / state.thumb.naturalHeight;
  const h = y1 - y0;
  const w = Math.min(h * aspect, state.video.width);
  const cx = clamp((x0 + x1) / 2, w / 2, state.video.width - w / 2);
  state.box = roundBox([cx - w / 2, y0, cx + w / 2, y1]);
  updateBoxLabel();
  draw();
  schedulePreview();
}

function updateBoxLabel() {
  $("box-label").textContent = state.box
    ? `[${state.box.map((v) => Math.round(v)).join(", ")}] on frame ${state.frame}`
    : "none: drag on the frame";
}

function updateControls() {
  const ready = Boolean(state.video && state.object && state.box);
  const running = state.run && (state.run.status === "queued" || state.run.status === "running");
  $("run").disabled = !ready || running || Boolean(state.config && state.config.pipeline);
  $("fit-box").disabled = !(state.box && state.thumb);
}

function placement() {
  return { frame: state.frame, box: state.box, yaw_deg: state.yaw };
}

function insertBody() {
  const body = {
    video_id: state.video.video_id,
    object_id: state.object.object_id,
    placement: placement(),
    synth: $("synth").value,
  };
  if ($("light-manual").checked) body.light = [Number($("light-az").value), Number($("light-el").value)];
  return body;
}

// ------------------------------------------------------------------ preview

function schedulePreview() {
  clearTimeout(state.preview.timer);
  state.preview.timer = setTimeout(requestPreview, 250);
}

async function requestPreview() {
  if (!(state.video && state.object && state.box)) return;
  if (state.config.pipeline) {
    showPreviewNote(`Composite preview is off: ${state.config.pipeline}. The box on the frame shows the placement.`);
    return;
  }
  if (state.preview.inFlight) {
    state.preview.pending = true; // only the latest placement is previewed once this one returns
    return;
  }
  state.preview.inFlight = true;
  state.preview.pending = false;
  const seq = ++state.preview.seq;
  const strip = $("preview-strip");
  strip.classList.add("busy");
  $("preview-status").textContent = "compositing… (the first preview builds the 4D scene and takes longer)";
  const statusTimer = setInterval(pollPreviewStatus, 800);
  try {
    const result = await api("/api/preview", { method: "POST", json: insertBody() });
    if (seq === state.preview.seq) renderPreview(result);
  } catch (err) {
    $("preview-status").textContent = "preview failed";
    showPreviewNote(err.message);
  } finally {
    clearInterval(statusTimer);
    strip.classList.remove("busy");
    state.preview.inFlight = false;
    if (state.preview.pending) requestPreview();
  }
}

async function pollPreviewStatus() {
  try {
    const status = await api("/api/preview/status");
    if (status.busy && status.stage && state.preview.inFlight) {
      const count = status.total > 0 ? ` ${status.done} / ${status.total}` : "";
      $("preview-status").textContent = `compositing… ${status.stage}${count}`;
    }
  } catch (err) {
    // the preview request itself reports failures
  }
}

function renderPreview(result) {
  const strip = $("preview-strip");
  strip.textContent = "";
  for (const frame of result.frames) {
    const figure = document.createElement("figure");
    const image = document.createElement("img");
    image.src = frame.image;
    image.alt = `composite preview of frame ${frame.index}`;
    image.className = "preview-frame";
    image.addEventListener("click", () => {
      $("frame").value = String(frame.index);
      showFrame(frame.index);
      updateBoxLabel();
    });
    const caption = document.createElement("figcaption");
    caption.textContent = frame.index === state.frame ? `frame ${frame.index} (placed here)` : `frame ${frame.index}`;
    figure.append(image, caption);
    strip.appendChild(figure);
  }
  $("preview-status").textContent = `${result.frames.length} frames in ${result.seconds.toFixed(1)} s`;
}

function showPreviewNote(message) {
  const strip = $("preview-strip");
  strip.textContent = "";
  const note = document.createElement("div");
  note.className = "preview-note";
  note.textContent = message;
  strip.appendChild(note);
}

// ------------------------------------------------------------------ runs

async function startRun() {
  clearError();
  try {
    const run = await api("/api/runs", { method: "POST", json: insertBody() });
    watchRun(run);
  } catch (err) {
    showError(err.message);
  }
}

function watchRun(run) {
  state.run = run;
  renderProgress(run);
  updateControls();
  clearTimeout(state.pollTimer);
  if (run.status === "queued" || run.status === "running") {
    state.pollTimer = setTimeout(pollRun, 500);
  } else {
    finishRun(run);
  }
}

async function pollRun() {
  try {
    watchRun(await api(`/api/runs/${state.run.run_id}`));
  } catch (err) {
    showError(err.message);
  }
}

function renderProgress(run) {
  const box = $("progress");
  box.hidden = false;
  box.classList.toggle("done", run.status === "done");
  box.classList.toggle("failed", ["failed", "cancelled", "interrupted"].includes(run.status));
  const active = run.status === "queued" || run.status === "running";
  $("cancel").hidden = !active;
  let fraction = run.total > 0 ? run.done / run.total : 0;
  if (run.status === "done") fraction = 1;
  $("progress-bar").style.width = `${Math.round(fraction * 100)}%`;
  $("progress-stage").textContent = active ? run.stage || run.status : run.status;
  $("progress-count").textContent = active && run.total > 0 ? `${run.done} / ${run.total}` : "";
  const chips = $("progress-stages");
  chips.textContent = "";
  for (const [stage, [done, total]] of Object.entries(run.stages || {})) {
    const chip = document.createElement("span");
    chip.className = done >= total ? "chip done" : "chip";
    chip.textContent = stage;
    chips.appendChild(chip);
  }
}

function finishRun(run) {
  updateControls();
  loadRuns();
  if (run.status === "done") {
    showResult(run);
  } else if (run.error) {
    showError(run.error);
  }
}

function downloadLink(href, text, primary = false) {
  const link = document.createElement("a");
  link.href = href;
  link.textContent = text;
  link.className = primary ? "button primary" : "button";
  link.setAttribute("download", "");
  return link;
}

async function showResult(run) {
  const base = `/api/runs/${run.run_id}`;
  const files = run.files || {};
  $("result-card").hidden = false;
  const video = $("result-video");
  if (files["inserted.mp4"]) {
    video.src = `${base}/files/inserted.mp4?t=${run.finished}`;
    video.hidden = false;
  } else {
    video.hidden = true;
  }
  const request = run.request || {};
  const seconds = run.finished && run.started ? ` in ${(run.finished - run.started).toFixed(1)} s` : "";
  $("result-meta").textContent = `${request.object_name || "object"} into ${request.video_name || "video"}, ${request.synth || ""}${seconds}`;
  const downloads = $("downloads");
  downloads.textContent = "";
  if (files["inserted.mp4"]) downloads.appendChild(downloadLink(`${base}/files/inserted.mp4`, "Video (mp4)", true));
  for (const part of ["masks", "layers", "shadow"]) {
    if (files[part]) downloads.appendChild(downloadLink(`${base}/zip/${part}`, `${part} (${files[part]} PNG, zip)`));
  }
  downloads.appendChild(downloadLink(`${base}/zip/all`, "everything (zip)"));
  $("result-sheet").hidden = !files["preview.png"];
  if (files["preview.png"]) $("result-sheet").src = `${base}/files/preview.png`;
  $("result-report").textContent = "";
  if (files["report.json"]) {
    try {
      const response = await fetch(`${base}/files/report.json`);
      $("result-report").textContent = JSON.stringify(await response.json(), null, 1);
    } catch (err) {
      $("result-report").textContent = "report.json cannot be read";
    }
  }
}

async function cancelRun() {
  if (!state.run) return;
  try {
    watchRun(await api(`/api/runs/${state.run.run_id}/cancel`, { method: "POST" }));
  } catch (err) {
    showError(err.message);
  }
}

async function loadRuns() {
  try {
    const runs = await api("/api/runs");
    const list = $("runs");
    list.textContent = "";
    if (runs.length === 0) {
      const item = document.createElement("li");
      item.className = "muted";
      item.textContent = "none yet";
      list.appendChild(item);
    }
    for (const run of runs.slice(0, 30)) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      const label = document.createElement("span");
      const request = run.request || {};
      label.textContent = `${request.object_name || "?"} → ${request.video_name || "?"}`;
      const status = document.createElement("span");
      status.className = `status-${run.status}`;
      status.textContent = run.status;
      button.append(label, status);
      button.addEventListener("click", () => {
        if (run.status === "done") {
          showResult(run);
          $("result-card").scrollIntoView({ behavior: "smooth" });
        } else if (run.status === "queued" || run.status === "running") {
          watchRun(run);
        } else if (run.error) {
          showError(run.error);
        }
      });
      item.appendChild(button);
      list.appendChild(item);
    }
  } catch (err) {
    showError(err.message);
  }
}

// ------------------------------------------------------------------ start

async function init() {
  try {
    state.config = await api("/api/config");
  } catch (err) {
    showError(err.message);
    return;
  }
  const pill = $("pipeline-state");
  if (state.config.pipeline) {
    pill.textContent = "pipeline missing";
    pill.className = "pill bad";
    pill.title = state.config.pipeline;
    showError(state.config.pipeline);
  } else {
    pill.textContent = "pipeline ready";
    pill.className = "pill ok";
  }
  const limits = state.config.limits;
  $("video-limits").textContent = `up to ${megabytes(limits.max_upload_bytes)}, ${limits.max_frames} frames`;
  $("error-close").addEventListener("click", clearError);
  $("video-file").addEventListener("change", onVideoFile);
  $("object-file").addEventListener("change", onObjectFile);
  $("library-open").addEventListener("click", openLibraryEntry);
  $("frame").addEventListener("input", (event) => {
    showFrame(Number(event.target.value));
    updateBoxLabel();
    schedulePreview();
  });
  $("yaw").addEventListener("input", (event) => {
    state.yaw = Number(event.target.value);
    $("yaw-label").textContent = `${state.yaw}°`;
    if (state.object && state.object.kind === "mesh") loadThumb();
    schedulePreview();
  });
  $("fit-box").addEventListener("click", fitBoxToObject);
  $("light-manual").addEventListener("change", (event) => {
    $("light-fields").hidden = !event.target.checked;
    schedulePreview();
  });
  $("light-az").addEventListener("change", schedulePreview);
  $("light-el").addEventListener("change", schedulePreview);
  $("run").addEventListener("click", startRun);
  $("cancel").addEventListener("click", cancelRun);
  const canvas = $("canvas");
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", onPointerUp);
  window.addEventListener("resize", resizeCanvas);
  await Promise.all([loadLibrary(), loadRuns()]);
}

init();
