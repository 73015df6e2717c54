// Drives the dashboard in Debian's chromium through playwright-core, for dashboard_e2e_test:
//   node dashboard.js release URL NAMESPACE CANARY ARTIFACTS_DIR
//     Opens the printed URL, waits until the list shows the canary Progressing and its weight
//     moving (two different weights), opens the canary's page, clicks abort and waits for the
//     page's confirmation. RESULT: the weights seen and the request's name.
//   node dashboard.js detail URL NAMESPACE CANARY ARTIFACTS_DIR
//     Opens the canary's page and reads what it shows of the canary's CanaryHistory (steps,
//     checks, judge, gates, releases), then clicks pause and reads the page's answer (the test
//     runs it as a user who may not create CanaryRequests). RESULT: those texts.
// Prints one line "RESULT {json}" and exits 0; on any failure prints why and exits 1.
// Screenshots go to ARTIFACTS_DIR.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const [mode, url, ns, name, artifacts] = process.argv.slice(2);
if (!["release", "detail"].includes(mode) || !url || !ns || !name || !artifacts) {
  console.error("usage: node dashboard.js release|detail URL NAMESPACE CANARY ARTIFACTS_DIR");
  process.exit(2);
}
const key = ns + "/" + name;
const timeout = Number(process.env.SERIN_BROWSER_TIMEOUT_MS || 90000);

async function release(page) {
  // The printed URL trades its token for a cookie and lands on the list.
  await page.goto(url);
  if (new URL(page.url()).search !== "") throw new Error("the token stayed in the URL: " + page.url());
  const row = `#canaries tr[data-canary="${key}"]`;
  await page.waitForSelector(row);
  console.log("list shows " + key);

  // The list updates without a reload: Progressing, then two different weights.
  const first = await page.waitForFunction((sel) => {
    const r = document.querySelector(sel);
    if (!r) return false;
    const phase = r.querySelector(".phase").textContent;
    const weight = Number(r.querySelector(".weight").textContent);
    return phase === "Progressing" && weight > 0 ? weight : false;
  }, row).then((h) => h.jsonValue());
  console.log("list: Progressing at weight " + first);
  const second = await page.waitForFunction(([sel, w]) => {
    const r = document.querySelector(sel);
    if (!r) return false;
    const weight = Number(r.querySelector(".weight").textContent);
    return weight !== w && weight > 0 ? weight : false;
  }, [row, first]).then((h) => h.jsonValue());
  console.log("list: weight moved to " + second);
  await page.screenshot({ path: path.join(artifacts, "list.png"), fullPage: true });

  // The canary's page: phase, weight, the chart, the buttons.
  await page.click(`${row} a`);
  await page.waitForSelector("#phase");
  await page.waitForSelector("#chart canvas");
  await page.waitForSelector('button[data-action="abort"]');
  const shown = await page.textContent("#weight");
  console.log("canary page: phase " + await page.textContent("#phase") + ", weight " + shown);
  await page.screenshot({ path: path.join(artifacts, "canary.png"), fullPage: true });

  // Abort: the page confirms, then shows the request it created.
  await page.fill("#reason", "aborted from the dashboard e2e test");
  await page.click('button[data-action="abort"]');
  await page.waitForFunction(() => {
    const m = document.getElementById("message");
    return m && m.className !== "" && !m.textContent.startsWith("Sending");
  });
  const message = await page.textContent("#message");
  const cls = await page.getAttribute("#message", "class");
  console.log("after abort: " + message);
  await page.screenshot({ path: path.join(artifacts, "after-abort.png"), fullPage: true });
  if (cls !== "done") throw new Error("abort was not accepted: " + message);
  const request = (message.match(/\((\S+-abort-\S+)\)/) || [])[1];
  if (!request) throw new Error("no request name in: " + message);
  return { weights: [first, second], request };
}

async function detail(page) {
  await page.goto(url);
  await page.waitForSelector("#canaries");
  await page.goto(new URL("/#/c/" + ns + "/" + name, url).href);
  await page.waitForSelector("#steps");
  await page.waitForSelector("#timeline");
  await page.waitForSelector("#chart canvas");
  const steps = await page.textContent("#steps");
  const timeline = await page.$$eval("#timeline li", (items) => items.map((i) => i.textContent));
  const weight = await page.textContent("#weight");
  await page.screenshot({ path: path.join(artifacts, "history.png"), fullPage: true });
  await page.click('button[data-action="pause"]');
  await page.waitForFunction(() => {
    const m = document.getElementById("message");
    return m && m.className !== "" && !m.textContent.startsWith("Sending");
  });
  const message = await page.textContent("#message");
  const cls = await page.getAttribute("#message", "class");
  await page.screenshot({ path: path.join(artifacts, "forbidden.png"), fullPage: true });
  return { steps, timeline, weight, message, messageClass: cls };
}

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "serin-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.SERIN_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(timeout);
    const problems = [];
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("console", (m) => {
      // A refused request is the answer the detail mode waits for, not a fault of the page.
      if (m.type() === "error" && !(mode === "detail" && m.text().includes("403"))) {
        problems.push("console: " + m.text());
      }
    });
    page.on("dialog", (d) => d.accept());
    const result = mode === "release" ? await release(page) : await detail(page);
    if (problems.length) throw new Error(problems.join("; "));
    console.log("RESULT " + JSON.stringify(result));
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  console.error("FAILED: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
