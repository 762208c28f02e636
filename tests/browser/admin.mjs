// Browser test of the admin page (/admin) in Debian's headless Chromium, driven by playwright-core.
// Usage: node admin.mjs <base-url> <admin-key> <good-simulator-cookie> <screenshot-dir>
// Prints one "ok: ..." line per step; exits 1 on the first failure.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, adminKey, goodCookie, shots] = process.argv.slice(2);
if (!base || !adminKey || !goodCookie || !shots) {
  console.error("usage: node admin.mjs <base-url> <admin-key> <good-cookie> <screenshot-dir>");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const T = 20000; // generous waits: the machine is shared
const ok = (m) => console.log(`ok: ${m}`);
function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, colorScheme: "light" });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  page.on("dialog", (d) => d.accept());
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const shot = async (name) => {
    await page.screenshot({ path: join(shots, `${name}.png`) });
    ok(`screenshot ${name}.png`);
  };

  // --- login: wrong key, then the right one
  await page.goto(`${base}/admin`);
  await page.waitForSelector("#login-form");
  await shot("login");
  await page.fill("#key", "definitely-not-the-key");
  await page.click("#login-submit");
  await page.waitForSelector("#login-error");
  check((await page.textContent("#login-error")).includes("Wrong admin key"), "wrong key shows an error");
  ok("wrong key refused with an error on the form");
  await page.fill("#key", adminKey);
  await page.click("#login-submit");
  await page.waitForSelector("nav#tabs");
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "el2a_admin");
  check(session && session.httpOnly && session.sameSite === "Strict" && session.path === "/admin",
    `session cookie HttpOnly, SameSite=Strict, Path=/admin: ${JSON.stringify(session && { ...session, value: "..." })}`);
  check(!(await page.evaluate(() => document.cookie)).includes("el2a_admin"), "the page script cannot read the session cookie");
  ok("logged in; the session cookie is HttpOnly, SameSite=Strict, Path=/admin");

  // --- overview
  await page.waitForFunction(() => document.querySelector("#ov-version").textContent !== "-");
  const protocol = await page.textContent("#ov-protocol");
  const store = await page.textContent("#ov-store");
  check(store === "memory", `store shown: ${store}`);
  ok(`overview shows version, protocol "${protocol}", store "${store}"`);

  // --- accounts: add a good cookie, see it active
  await page.click('nav a[data-tab="accounts"]');
  await page.waitForSelector("#accounts-table tbody tr");
  await page.fill("#add-cookie", goodCookie);
  await page.fill("#add-label", "browser-added");
  await page.click("#add-submit");
  await page.waitForSelector("#add-result.ok");
  const added = await page.textContent("#add-result");
  check(added.includes("Clerk user user_") || added.includes("Clerk user"), `add result: ${added}`);
  const row = 'tr[data-label-name="browser-added"]';
  await page.waitForFunction((sel) => {
    const s = document.querySelector(`${sel} .state`);
    return s && s.textContent === "active";
  }, row);
  ok(`added an account: ${added}`);

  // --- a bad cookie: the reason is shown
  await page.fill("#add-cookie", "__client=this-is-not-a-real-session");
  await page.fill("#add-label", "bad-one");
  await page.click("#add-submit");
  await page.waitForSelector("#add-result.error");
  const refused = await page.textContent("#add-result");
  check(refused.startsWith("Refused:") && refused.length > "Refused: ".length + 5, `refusal: ${refused}`);
  check((await page.$('tr[data-label-name="bad-one"]')) === null, "a refused cookie is not listed");
  ok(`bad cookie refused: ${refused}`);

  // --- disable, enable, re-check
  await page.click(`${row} button[data-action="disable"]`);
  await page.waitForFunction((sel) => document.querySelector(`${sel} .state`)?.textContent === "disabled", row);
  ok("disabled the account");
  await page.click(`${row} button[data-action="enable"]`);
  await page.waitForFunction((sel) => document.querySelector(`${sel} .state`)?.textContent === "active", row);
  ok("enabled the account again");
  await page.click(`${row} button[data-action="check"]`);
  await page.waitForFunction((sel) => document.querySelector(`${sel} .state`)?.textContent === "active", row);
  ok("re-checked the account");
  const html = await page.content();
  check(!html.includes(goodCookie) && !html.includes(goodCookie.replace(/^__client=/, "")), "no cookie value on the page");
  ok("no cookie value in the accounts page");

  // --- playground: a streamed answer with reasoning apart, then a second turn
  await page.click('nav a[data-tab="playground"]');
  await page.waitForSelector("#pg-model option", { state: "attached" });
  await page.evaluate(() => {
    window.__answerUpdates = 0;
    new MutationObserver(() => { window.__answerUpdates++; })
      .observe(document.querySelector("#pg-transcript"), { subtree: true, childList: true, characterData: true });
  });
  await page.fill("#pg-input", "Hello from the browser test");
  await page.click("#pg-send");
  await page.waitForSelector(".msg.assistant.done");
  const first = await page.textContent(".msg.assistant.done .answer");
  const reasoning = await page.textContent(".msg.assistant.done .reasoning-text");
  const reasoningHidden = await page.$eval(".msg.assistant.done details.reasoning", (d) => d.hidden);
  const updates = await page.evaluate(() => window.__answerUpdates);
  check(first.startsWith("Turn 1: you said \"Hello from the browser test\""), `first answer: ${first}`);
  check(!reasoningHidden && reasoning.includes("Considering turn 1"), `reasoning box: ${reasoning}`);
  check(!first.includes("Considering"), "reasoning is not mixed into the answer");
  check(updates >= 4, `the answer arrived in pieces (${updates} DOM updates)`);
  ok(`streamed answer (${updates} updates) with separate reasoning: "${reasoning}"`);
  await page.fill("#pg-input", "And a second question");
  await page.click("#pg-send");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant.done").length === 2);
  const second = await page.textContent(".msg.assistant.done:nth-of-type(4) .answer");
  check(second.startsWith("Turn 2: you said \"And a second question\""), `second answer continues the chat: ${second}`);
  check((await page.textContent("#pg-status")).includes("4 messages"), "the whole history was sent");
  ok("second turn continued the same upstream conversation (Turn 2)");
  await page.click(".msg.assistant.done:nth-of-type(4) details.reasoning summary");
  await shot("playground");

  // --- settings: effective configuration, secrets redacted
  await page.click('nav a[data-tab="settings"]');
  await page.waitForSelector("#settings-table tbody tr");
  const settings = await page.textContent("#settings-table");
  check(settings.includes("<redacted>"), "secrets shown as <redacted>");
  check(!settings.includes(adminKey), "the admin key is not shown");
  ok("settings shown with secrets redacted");
  await shot("settings");

  // --- overview again, now with traffic in the chart
  await page.click('nav a[data-tab="overview"]');
  await page.waitForFunction(() => document.querySelectorAll("#chart rect.bar-req").length > 0);
  await page.waitForFunction(() => document.querySelector("#ov-ttfb").textContent !== "- / -");
  ok(`overview chart has traffic; TTFB ${await page.textContent("#ov-ttfb")}`);
  await shot("overview");

  // --- accounts again, after traffic: the configured account is discovered and has a model
  await page.click('nav a[data-tab="accounts"]');
  await page.waitForFunction(() => [...document.querySelectorAll("#accounts-table td")]
    .some((td) => td.getAttribute("data-label") === "Model" && td.textContent !== "-"));
  await shot("accounts");

  // --- phone width and dark mode
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.click('nav a[data-tab="accounts"]');
  await page.waitForSelector(`${row} .state`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `no horizontal scrolling at phone width (${overflow}px too wide)`);
  ok("phone width in dark mode fits");
  await shot("accounts-phone-dark");

  // --- log out: the session is gone
  await page.setViewportSize({ width: 1200, height: 800 });
  await page.emulateMedia({ colorScheme: "light" });
  await page.click("#logout");
  await page.waitForSelector("#login-form");
  check(!(await context.cookies()).some((c) => c.name === "el2a_admin"), "logout clears the cookie");
  // Put the old cookie back: the server must have forgotten the session itself.
  await context.addCookies([session]);
  const after = await page.request.get(`${base}/admin/api/accounts`);
  check(after.status() === 401, `after logout the admin API answers ${after.status()} to the old session`);
  ok("logged out; the admin API refuses the old session");
  check(pageErrors.length === 0, `no script errors: ${pageErrors.join("; ")}`);
  ok("no script errors");
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
