// The Teach page: record samples per class, train in the webml service, preview, export.
// Camera frames go as the planes VideoFrame.copyTo gives (I420 or NV12, the central square: no canvas,
// no RGB conversion in the page); the service converts them inside a graph (webml.media). Uploaded
// images (and camera frames of another format) go as raw RGBA bytes at the model's input size.

const api = (path) => `/teach/api/${path}`;
const WRITE = { "X-Webml-Teach": "1" };
const $ = (id) => document.getElementById(id);

const state = { size: 224, classes: [], nextClass: 1, trained: false, predicting: false, stream: null,
  sent: { planes: 0, rgba: 0 } };
const PLANES_TYPE = "application/x-webml-planes";
window.teach = state; // for tests and the curious

async function call(path, options = {}) {
  const response = await fetch(api(path), options);
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

// -- frames ------------------------------------------------------------------------------------

const frameCanvas = $("frame");
const frameContext = frameCanvas.getContext("2d", { willReadFrequently: true });

function drawSquare(source, width, height) {
  // The central square of the source, scaled to the model's input size.
  const side = Math.min(width, height);
  frameContext.drawImage(source, (width - side) / 2, (height - side) / 2, side, side, 0, 0, state.size, state.size);
  return frameContext.getImageData(0, 0, state.size, state.size);
}

// One message of the service's frame format: u32 little-endian header length, JSON header, the bytes.
function framed(header, data) {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(4 + head.length + data.byteLength);
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  out.set(data, 4 + head.length);
  return out;
}

// The central square of a camera frame as its planes (WebCodecs VideoFrame.copyTo), or null when the
// frame is not I420 / NV12 (then the canvas path is used). Offsets are even: 4:2:0 chroma covers 2x2.
async function cameraPlanes(video) {
  if (typeof VideoFrame === "undefined") return null;
  const frame = new VideoFrame(video);
  try {
    if (frame.format !== "I420" && frame.format !== "NV12") return null;
    const { x, y, width, height } = frame.visibleRect;
    const side = Math.min(width, height) & ~1;
    const rect = { x: x + (((width - side) / 2) & ~1), y: y + (((height - side) / 2) & ~1), width: side, height: side };
    const data = new Uint8Array(frame.allocationSize({ rect }));
    const layout = await frame.copyTo(data, { rect });
    const { matrix, fullRange } = frame.colorSpace;
    const header = { format: frame.format, width: side, height: side, layout, colorSpace: { matrix, fullRange } };
    return { body: framed(header, data), type: PLANES_TYPE, kind: "planes" };
  } finally {
    frame.close();
  }
}

function thumbnailOf(draw) {
  const c = document.createElement("canvas");
  c.width = c.height = state.size;
  draw(c.getContext("2d"));
  c.setAttribute("aria-hidden", "true");
  return c;
}

function rgbaSample(imageData) {
  return { body: imageData.data, type: "application/octet-stream", kind: "rgba",
    thumbnail: () => thumbnailOf((g) => g.putImageData(imageData, 0, 0)) };
}

// A sample of the camera now: its planes, else a canvas's RGBA. The thumbnail is for the page only.
async function cameraSample() {
  const video = $("camera");
  if (!state.stream || video.readyState < 2 || !video.videoWidth) return null;
  const planes = await cameraPlanes(video);
  if (!planes) return rgbaSample(drawSquare(video, video.videoWidth, video.videoHeight));
  const side = Math.min(video.videoWidth, video.videoHeight);
  const sx = (video.videoWidth - side) / 2, sy = (video.videoHeight - side) / 2;
  planes.thumbnail = () => thumbnailOf((g) => g.drawImage(video, sx, sy, side, side, 0, 0, state.size, state.size));
  return planes;
}

function send(path, sample) {
  state.sent[sample.kind] += 1;
  return call(path, { method: "POST", headers: { ...WRITE, "Content-Type": sample.type }, body: sample.body });
}

// -- classes -----------------------------------------------------------------------------------

function renderCount(cls) {
  const n = cls.samples.length;
  cls.element.querySelector(".count").textContent = `${n} sample${n === 1 ? "" : "s"}`;
}

async function addSample(cls, sample) {
  const thumb = sample.thumbnail();
  const { id } = await send("samples", sample);
  if (!state.classes.includes(cls)) return;
  cls.samples.push(id);
  const thumbs = cls.element.querySelector(".thumbs");
  thumbs.append(thumb);
  while (thumbs.children.length > 24) thumbs.firstChild.remove();
  renderCount(cls);
}

function startRecording(cls, button) {
  if (cls.recording) return;
  cls.recording = true;
  button.setAttribute("aria-pressed", "true");
  const tick = async () => {
    if (!cls.recording) return;
    const sample = await cameraSample();
    if (sample) {
      try { await addSample(cls, sample); } catch (e) { $("camera-status").textContent = `Recording failed: ${e.message}`; }
    }
    if (cls.recording) cls.timer = setTimeout(tick, 80);
  };
  tick();
}

function stopRecording(cls, button) {
  cls.recording = false;
  clearTimeout(cls.timer);
  button.setAttribute("aria-pressed", "false");
}

function addClass(name) {
  const element = $("class-template").content.firstElementChild.cloneNode(true);
  const cls = { id: state.nextClass++, samples: [], element, recording: false };
  const input = element.querySelector(".class-name");
  input.value = name || `Class ${cls.id}`;
  input.id = `class-name-${cls.id}`;
  const record = element.querySelector(".record");
  record.setAttribute("aria-pressed", "false");
  record.setAttribute("aria-describedby", input.id);
  record.addEventListener("pointerdown", (e) => { e.preventDefault(); record.focus(); startRecording(cls, record); });
  for (const type of ["pointerup", "pointerleave", "pointercancel"]) {
    record.addEventListener(type, () => stopRecording(cls, record));
  }
  record.addEventListener("keydown", (e) => {
    if (e.key === " " || e.key === "Enter") { e.preventDefault(); startRecording(cls, record); }
  });
  record.addEventListener("keyup", (e) => {
    if (e.key === " " || e.key === "Enter") { e.preventDefault(); stopRecording(cls, record); }
  });
  record.addEventListener("blur", () => stopRecording(cls, record));
  element.querySelector(".upload-input").addEventListener("change", async (e) => {
    for (const file of e.target.files) {
      const bitmap = await createImageBitmap(file);
      await addSample(cls, rgbaSample(drawSquare(bitmap, bitmap.width, bitmap.height)));
    }
    e.target.value = "";
  });
  const remove = element.querySelector(".delete");
  remove.setAttribute("aria-describedby", input.id);
  remove.addEventListener("click", () => {
    stopRecording(cls, record);
    state.classes = state.classes.filter((c) => c !== cls);
    element.remove();
    $("add-class").focus();
  });
  state.classes.push(cls);
  $("classes").append(element);
  renderCount(cls);
  return cls;
}

// -- training ----------------------------------------------------------------------------------

function drawChart(history, epochs) {
  const canvas = $("chart");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 24;
  g.fillStyle = "#ffffff"; g.fillRect(0, 0, w, h);
  g.strokeStyle = "#595959"; g.strokeRect(pad, 4, w - pad - 4, h - pad - 4);
  const maxLoss = Math.max(1e-6, ...history.loss);
  const x = (i) => pad + ((w - pad - 4) * (i + 1)) / Math.max(1, epochs);
  const line = (values, scale, colour) => {
    g.strokeStyle = colour; g.lineWidth = 2; g.beginPath();
    values.forEach((v, i) => { const y = 4 + (h - pad - 4) * (1 - v / scale); i ? g.lineTo(x(i), y) : g.moveTo(x(i), y); });
    g.stroke();
  };
  line(history.loss, maxLoss, "#0b5394");
  line(history.val_accuracy, 1, "#8b0000");
  g.fillStyle = "#1a1a1a"; g.font = "12px sans-serif";
  g.fillText("loss (blue), validation accuracy (red)", pad + 4, h - 6);
  const n = history.loss.length;
  if (!n) { $("chart-text").textContent = "No epochs yet."; return; }
  const acc = history.val_accuracy.length ? `, validation accuracy ${(100 * history.val_accuracy.at(-1)).toFixed(0)}%` : "";
  $("chart-text").textContent =
    `Epoch ${n} of ${epochs}: loss ${history.loss.at(-1).toFixed(4)}${acc}. ` +
    `Loss by epoch: ${history.loss.map((v) => v.toFixed(3)).join(", ")}.`;
}

async function train() {
  const ready = state.classes.filter((c) => c.samples.length);
  const spec = {
    epochs: Number($("epochs").value) || 20,
    classes: ready.map((c) => ({ name: c.element.querySelector(".class-name").value, samples: c.samples })),
  };
  state.trained = false;
  $("train").disabled = true;
  try {
    await call("train", { method: "POST", headers: { ...WRITE, "Content-Type": "application/json" }, body: JSON.stringify(spec) });
    $("train-status").textContent = "Computing the features of the samples…";
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      const s = await call("status");
      $("train-progress").max = s.epochs || 1;
      $("train-progress").value = s.epoch;
      drawChart(s.history, s.epochs);
      if (s.state === "training") $("train-status").textContent = `Training: epoch ${s.epoch} of ${s.epochs}.`;
      if (s.state === "error") throw new Error(s.message);
      if (s.state === "done") {
        const acc = s.validation_accuracy == null ? "" : ` Validation accuracy ${(100 * s.validation_accuracy).toFixed(0)}%.`;
        $("train-status").textContent = `Trained on ${s.classes.length} classes.${acc}`;
        state.trained = true;
        document.body.dataset.state = "predicting";
        predictLoop();
        return;
      }
    }
  } catch (e) {
    $("train-status").textContent = `Training failed: ${e.message}`;
  } finally {
    $("train").disabled = false;
  }
}

// -- preview -----------------------------------------------------------------------------------

let lastAnnounced = "";

function showPrediction({ classes, probabilities }) {
  const bars = $("bars");
  bars.replaceChildren(...classes.map((name, i) => {
    const li = document.createElement("li");
    const pct = Math.round(100 * probabilities[i]);
    const label = document.createElement("span");
    label.textContent = `${name}: ${pct}%`;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${pct}%`;
    li.append(label, bar);
    return li;
  }));
  let top = 0;
  probabilities.forEach((p, i) => { if (p > probabilities[top]) top = i; });
  // Announced only when the top class or its confidence (to 10%) changes: polite, not chatty.
  const text = `${classes[top]} (${Math.round(10 * probabilities[top]) * 10}% confident)`;
  if (text !== lastAnnounced) { lastAnnounced = text; $("top-prediction").textContent = text; }
  state.prediction = { name: classes[top], probability: probabilities[top] };
}

async function predictLoop() {
  if (state.predicting) return;
  state.predicting = true;
  while (state.trained) {
    const sample = await cameraSample();
    if (sample) {
      try {
        showPrediction(await send("predict", sample));
      } catch (e) { $("top-prediction").textContent = `Prediction failed: ${e.message}`; state.trained = false; }
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  state.predicting = false;
}

// -- export ------------------------------------------------------------------------------------

function exportModel() {
  if (!state.trained) { $("export-status").textContent = "Train a model first."; return; }
  const format = $("export-format").value;
  const a = document.createElement("a");
  a.href = api(`export?format=${encodeURIComponent(format)}`);
  a.download = { onnx: "classifier.onnx", webml: "classifier.npz", web: "classifier-web.zip" }[format];
  document.body.append(a); a.click(); a.remove();
  $("export-status").textContent = `Exporting ${a.download}…`;
}

// -- start -------------------------------------------------------------------------------------

async function start() {
  $("add-class").addEventListener("click", () => addClass().element.querySelector(".class-name").focus());
  $("train").addEventListener("click", train);
  $("export").addEventListener("click", exportModel);
  addClass("Class 1");
  addClass("Class 2");
  try {
    state.size = (await call("info")).image_size;
    frameCanvas.width = frameCanvas.height = state.size;
  } catch (e) { $("camera-status").textContent = `The service did not answer: ${e.message}`; }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
    $("camera").srcObject = state.stream;
    $("camera-status").textContent = "Camera on.";
  } catch (e) {
    $("camera-status").textContent = `No camera (${e.name}): upload images for each class instead.`;
  }
  document.body.dataset.state = "ready";
}

start();
