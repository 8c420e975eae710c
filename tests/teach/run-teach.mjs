// Drives the Teach page of `webml serve` in headless Chromium with a fake camera (a Y4M file):
// rename and add classes, record samples of each class, train, check the live prediction, export,
// with axe-core in every state.  Usage: node run-teach.mjs URL VIDEO.y4m OUT_DIR --timeout S
// Prints one JSON object; exit status 0 when the page did everything, 1 when a step failed.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [url, video, out] = process.argv.slice(2);
const timeoutS = Number(process.argv[process.argv.indexOf("--timeout") + 1] || 90);
const CLASSES = JSON.parse(process.env.TEACH_CLASSES); // [{name, rgb: [r, g, b]}] in the video's order
const result = { steps: [], axe: {}, predictions: {} };
const executablePath = process.env.WEBML_CHROMIUM || "/usr/bin/chromium";

const killer = setTimeout(() => {
  result.error = `ran past ${timeoutS} s`;
  console.log(JSON.stringify(result));
  process.exit(1);
}, timeoutS * 1000);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         `--use-file-for-fake-video-capture=${video}`, "--no-sandbox"],
});
const step = (s) => result.steps.push(s);

async function axe(page, state) {
  await page.addScriptTag({ content: readFileSync(require.resolve("axe-core/axe.min.js"), "utf8") });
  const r = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
    .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help })));
  result.axe[state] = r;
}

// Which class the camera shows now: the nearest class colour to the mean of the frame.
const showing = (page) => page.evaluate((classes) => {
  const v = document.getElementById("camera");
  if (v.readyState < 2) return -1;
  const c = document.createElement("canvas");
  c.width = c.height = 16;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0, 16, 16);
  const d = g.getImageData(0, 0, 16, 16).data;
  const m = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) m[k] += d[i + k] / 256;
  let best = -1, bestD = Infinity;
  classes.forEach((cl, i) => {
    const dist = cl.rgb.reduce((s, x, k) => s + (x - m[k]) ** 2, 0);
    if (dist < bestD) { bestD = dist; best = i; }
  });
  return bestD < 40 * 40 * 3 ? best : -1;
}, CLASSES);

async function waitShowing(page, i, ms = 15000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await showing(page)) === i) return;
    await page.waitForTimeout(20);
  }
  throw new Error(`the camera never showed class ${CLASSES[i].name}`);
}

// Waits for the start of a segment of class i (so that a recording never runs into the next class).
async function waitStart(page, i) {
  const end = Date.now() + 15000;
  while ((await showing(page)) === i) {
    if (Date.now() > end) throw new Error(`the camera kept showing ${CLASSES[i].name}`);
    await page.waitForTimeout(20);
  }
  await waitShowing(page, i);
}

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on("pageerror", (e) => { (result.pageErrors ||= []).push(String(e)); });
  await page.goto(url);
  await page.waitForSelector("body[data-state=ready]");
  result.cameraStatus = await page.locator("#camera-status").textContent();
  await axe(page, "empty");
  step("empty");

  // Classes: two are there; name them, add the rest, add one more and delete it.
  const names = page.getByRole("textbox", { name: "Class name" });
  for (let i = 2; i < CLASSES.length; i++) await page.getByRole("button", { name: "Add class" }).click();
  // The keyboard alone: Tab to "Add class", Enter; the new class's name field has the focus, visibly.
  let tabs = 0;
  while (tabs < 40 && !(await page.evaluate(() => document.activeElement?.id === "add-class"))) {
    await page.keyboard.press("Tab");
    tabs++;
  }
  result.tabsToAddClass = tabs;
  result.addClassOutline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  await page.keyboard.press("Enter");
  result.focusAfterAdd = await page.evaluate(() => ({
    label: document.activeElement.getAttribute("aria-label"),
    outline: getComputedStyle(document.activeElement).outlineStyle,
  }));
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  result.focusedThirdTab = await page.evaluate(() => document.activeElement.textContent);
  await page.keyboard.press("Enter"); // "Delete class" of the new class
  result.classFields = await names.count();
  for (let i = 0; i < CLASSES.length; i++) await names.nth(i).fill(CLASSES[i].name);
  step("classes");

  // Record each class while the camera shows it: the mouse held for the first, the keyboard for the others.
  const record = page.getByRole("button", { name: "Record" });
  for (let pass = 0; pass < 2; pass++) for (let i = 0; i < CLASSES.length; i++) {
    await waitStart(page, i);
    const button = record.nth(i);
    const useMouse = i === 0;  // the first class by mouse, the others by keyboard
    if (useMouse) { await button.hover(); await page.mouse.down(); } else { await button.focus(); await page.keyboard.down("Space"); }
    const start = Date.now();
    let axed = false;
    while (Date.now() - start < 1100 && (await showing(page)) === i) {
      if (!axed && i === 0 && pass === 0) { await axe(page, "recording"); axed = true; }
      await page.waitForTimeout(30);
    }
    if (useMouse) await page.mouse.up(); else await page.keyboard.up("Space");
    await page.waitForTimeout(300);
  }
  // Uploaded images count as samples too (the first class's images, as files).
  const uploads = JSON.parse(process.env.TEACH_UPLOADS || "[]");
  if (uploads.length) {
    const before = await page.evaluate(() => window.teach.classes[0].samples.length);
    await page.locator(".upload-input").first().setInputFiles(uploads);
    await page.waitForFunction((n) => window.teach.classes[0].samples.length >= n, before + uploads.length);
    result.uploaded = (await page.evaluate(() => window.teach.classes[0].samples.length)) - before;
  }
  result.counts = await page.evaluate(() => window.teach.classes.map((c) => c.samples.length));
  result.countTexts = await page.locator(".count").allTextContents();
  step("recorded");

  await page.locator("#epochs").fill(process.env.TEACH_EPOCHS || "15");
  await page.getByRole("button", { name: "Train" }).click();
  await page.waitForFunction(() => /Training: epoch|Computing/.test(document.getElementById("train-status").textContent));
  result.trainingStatusAtAxe = await page.locator("#train-status").textContent();
  await axe(page, "training");
  step("training");
  await page.waitForSelector("body[data-state=predicting]", { timeout: 60000 });
  result.trainStatus = await page.locator("#train-status").textContent();
  result.chartText = await page.locator("#chart-text").textContent();
  step("trained");

  // The live prediction names the class the camera shows, for each class.
  for (let i = 0; i < CLASSES.length; i++) {
    await waitShowing(page, i);
    const end = Date.now() + 10000;
    let seen = null;
    while (Date.now() < end) {
      const text = await page.locator("#top-prediction").textContent();
      const shown = await showing(page);
      if (shown === i && text.startsWith(`${CLASSES[i].name} (`)) { seen = text; break; }
      if (shown === i) (result.seenInstead ||= {})[CLASSES[i].name] = text;
      await page.waitForTimeout(30);
    }
    result.predictions[CLASSES[i].name] = seen;
  }
  result.sent = await page.evaluate(() => window.teach.sent); // how frames went: planes (copyTo) or RGBA
  const region = page.getByRole("region", { name: "Predictions" });
  result.predictionsLive = await region.getAttribute("aria-live");
  result.barTexts = await page.locator("#bars li span").allTextContents();
  await axe(page, "predicting");
  step("predicting");
  await page.screenshot({ path: join(out, "teach.png"), fullPage: true });

  // Export (ONNX) through the page's button: a download.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export" }).click()]);
  await download.saveAs(join(out, "classifier.onnx"));
  result.exported = join(out, "classifier.onnx");
  step("exported");
} catch (e) {
  result.error = String(e && e.stack || e);
}
await browser.close();
clearTimeout(killer);
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
