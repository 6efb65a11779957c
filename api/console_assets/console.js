// The operator console: a small client of the public API (/v1), nothing else.
// It signs in with an API token (kept in this tab's sessionStorage only), shows
// only what the token's role may see or do, and lets the API judge every command:
// its validation messages are shown beside the fields they concern.

const TOKEN_KEY = "escalations.token";
const POLL_MS = 2000;
const ACTIVE = ["open", "in_progress", "resolution_proposed"];

let me = null; // {name, role, may_read, commands}
let timers = []; // intervals of the current view, cleared on navigation
let openapi = null;

const main = () => document.getElementById("main");

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

async function api(path, { method = "GET", body, key } = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function newKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `console-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

// ------------------------------------------------------------------ small helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const words = (name) => (name || "").replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function countdown(iso) {
  if (!iso) return { text: "no deadline", overdue: false };
  let ms = new Date(iso).getTime() - Date.now();
  const overdue = ms < 0;
  ms = Math.abs(ms);
  const s = Math.floor(ms / 1000);
  const parts = [[Math.floor(s / 86400), "d"], [Math.floor((s % 86400) / 3600), "h"], [Math.floor((s % 3600) / 60), "m"], [s % 60, "s"]];
  const first = parts.findIndex(([n]) => n > 0);
  const shown = parts.slice(first < 0 ? 3 : first, (first < 0 ? 3 : first) + 2).map(([n, u]) => `${n}${u}`).join(" ");
  return { text: overdue ? `overdue by ${shown}` : `in ${shown}`, overdue };
}

function countdownEl(iso) {
  const el = h("span", { class: "countdown", "data-due": iso || "" });
  paintCountdown(el);
  return el;
}

function paintCountdown(el) {
  const { text, overdue } = countdown(el.dataset.due || null);
  el.textContent = text;
  el.classList.toggle("overdue", overdue);
}

function every(ms, fn) {
  timers.push(setInterval(fn, ms));
}

function alertBox(message) {
  return h("p", { class: "alert", role: "alert" }, message);
}

function problemText(error) {
  if (!(error instanceof ApiError)) return `The request failed: ${error.message}`;
  const rule = error.problem.rule ? ` (rule: ${error.problem.rule})` : "";
  return `${error.problem.title || "Error"}: ${error.message}${rule}`;
}

// ------------------------------------------------------------------ routing

async function route() {
  timers.forEach(clearInterval);
  timers = [];
  const hash = location.hash || "#/board";
  if (!sessionStorage.getItem(TOKEN_KEY)) return showSignIn();
  if (!me) {
    try {
      me = await api("/v1/me");
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      return showSignIn(problemText(error));
    }
  }
  paintHeader(hash);
  const root = main();
  root.replaceChildren();
  if (!me.may_read) {
    root.append(h("h1", {}, "Signed in"), h("p", {}, `The role ${me.role} may not read cases, so there is nothing to show here.`));
    return;
  }
  const caseMatch = /^#\/case\/(.+)$/.exec(hash);
  if (caseMatch) return showCase(decodeURIComponent(caseMatch[1]));
  if (hash === "#/metrics") return showMetrics();
  if (hash === "#/inbox") return showInbox();
  if (hash === "#/deliveries") return showDeadLetters();
  return showBoard();
}

function paintHeader(hash) {
  const nav = document.getElementById("nav");
  nav.hidden = !me?.may_read;
  for (const link of nav.querySelectorAll("a")) {
    const current = hash.startsWith(`#/${link.dataset.nav}`) || (link.dataset.nav === "board" && hash.startsWith("#/case"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.getElementById("whoami").textContent = me ? `${me.name} (${me.role})` : "";
  paintUnread();
  every(POLL_MS, paintUnread);
  document.getElementById("signout").hidden = !me;
}

// ------------------------------------------------------------------ inbox and dead letters

async function paintUnread() {
  try {
    const box = await api("/v1/inbox?limit=1");
    document.getElementById("unread").textContent = box.unread ? String(box.unread) : "";
  } catch (error) {
    document.getElementById("unread").textContent = "";
  }
}

async function showInbox() {
  const list = h("ul", { class: "inbox", id: "inbox" });
  const status = h("p", { class: "status-line", role: "status", "aria-live": "polite" }, "Loading…");
  main().replaceChildren(h("h1", {}, "Inbox"), status, list);
  async function load() {
    try {
      const box = await api("/v1/inbox");
      status.textContent = `${box.unread} unread of ${box.items.length}`;
      list.replaceChildren(...box.items.map((item) => h(
        "li",
        { class: item.read_at ? "read" : "unread", "data-delivery": item.delivery_id },
        h("strong", {}, item.subject), " ",
        item.case_id ? h("a", { href: `#/case/${encodeURIComponent(item.case_id)}` }, item.case_id) : "",
        h("pre", {}, item.text),
        item.read_at ? "" : h("button", { type: "button", onclick: async () => {
          await api(`/v1/inbox/${item.delivery_id}/read`, { method: "POST", body: {} });
          load();
          paintUnread();
        } }, "Mark read"),
      )));
    } catch (error) {
      status.textContent = problemText(error);
    }
  }
  load();
  every(POLL_MS, load);
}

async function showDeadLetters() {
  const body = h("tbody");
  const status = h("p", { class: "status-line", role: "status", "aria-live": "polite" }, "Loading…");
  const table = h(
    "table",
    { id: "dead-letters" },
    h("thead", {}, h("tr", {}, ["Created", "Case", "Recipient", "Channel", "Attempts", "Last error", ""].map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  main().replaceChildren(h("h1", {}, "Dead letters"), status, table);
  async function load() {
    try {
      const found = await api("/v1/deliveries?status=dead");
      status.textContent = `${found.deliveries.length} dead letter${found.deliveries.length === 1 ? "" : "s"}`;
      body.replaceChildren(...found.deliveries.map((d) => h(
        "tr",
        { "data-delivery": d.id },
        h("td", {}, when(d.created_at)),
        h("td", {}, d.case_id ? h("a", { href: `#/case/${encodeURIComponent(d.case_id)}` }, d.case_id) : "—"),
        h("td", {}, d.recipient),
        h("td", {}, d.channel),
        h("td", {}, String(d.attempts)),
        h("td", {}, d.last_error || ""),
        h("td", {}, h("button", { type: "button", onclick: async () => {
          try {
            await api(`/v1/deliveries/${d.id}/redrive`, { method: "POST", body: {} });
            load();
          } catch (error) {
            status.textContent = problemText(error);
          }
        } }, "Re-drive")),
      )));
    } catch (error) {
      status.textContent = problemText(error);
    }
  }
  load();
  every(POLL_MS, load);
}

// ------------------------------------------------------------------ sign in

function showSignIn(message) {
  me = null;
  paintHeader("");
  const error = h("p", { class: "alert", role: "alert", id: "signin-error" }, message || "");
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", size: 50, "aria-describedby": "token-hint signin-error" });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        try {
          me = await api("/v1/me");
          if (!location.hash || location.hash === "#/signin") location.hash = "#/board";
          else route();
        } catch (err) {
          sessionStorage.removeItem(TOKEN_KEY);
          error.textContent = problemText(err);
          input.setAttribute("aria-invalid", "true");
          input.focus();
        }
      },
    },
    h("div", { class: "field" }, h("label", { for: "token" }, "API token"), input, h("span", { class: "hint", id: "token-hint" }, "Create one with: escalations token create --role agent --name NAME")),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  main().replaceChildren(h("h1", {}, "Sign in"), form);
  input.focus();
}

// ------------------------------------------------------------------ board

function showBoard() {
  const filters = { owner: "", team: "", customer_id: "", priority: "", breached: "" };
  const body = h("tbody");
  const status = h("p", { class: "status-line", role: "status", "aria-live": "polite" }, "Loading…");
  const field = (id, label, control) => h("div", {}, h("label", { for: id }, label), control);
  let typing = null;
  const onChange = (name) => (event) => {
    filters[name] = event.target.value.trim();
    clearTimeout(typing);
    typing = setTimeout(load, event.type === "input" ? 300 : 0);
  };
  const filterBar = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter cases", onsubmit: (e) => e.preventDefault() },
    field("f-owner", "Owner", h("input", { id: "f-owner", name: "owner", onchange: onChange("owner"), oninput: onChange("owner") })),
    field("f-team", "Team", h("input", { id: "f-team", name: "team", onchange: onChange("team"), oninput: onChange("team") })),
    field("f-mine", "Mine", h("input", { id: "f-mine", type: "checkbox", name: "mine", onchange: (event) => {
      // "Mine": the cases the signed-in token's name owns (a person's token is named after their directory id).
      const owner = document.getElementById("f-owner");
      owner.value = event.target.checked ? me.name : "";
      owner.dispatchEvent(new Event("change"));
    } })),
    field("f-customer", "Customer id", h("input", { id: "f-customer", name: "customer_id", onchange: onChange("customer_id"), oninput: onChange("customer_id") })),
    field("f-priority", "Priority", h("select", { id: "f-priority", name: "priority", onchange: onChange("priority") }, h("option", { value: "" }, "any"), ["P1", "P2", "P3", "P4"].map((p) => h("option", { value: p }, p)))),
    field("f-breached", "Breached", h("select", { id: "f-breached", name: "breached", onchange: onChange("breached") }, h("option", { value: "" }, "any"), h("option", { value: "true" }, "breached only"), h("option", { value: "false" }, "not breached"))),
  );
  const table = h(
    "table",
    { "aria-describedby": "board-caption" },
    h("caption", { id: "board-caption", class: "visually-hidden" }, "Open cases, soonest next deadline first"),
    h("thead", {}, h("tr", {}, ["Next deadline", "Kind", "Case", "Priority", "Level", "Owner", "Team", "Customer", "Category", "Status"].map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  // Resolved and closed cases whose follow-up (the customer's satisfaction) is not recorded yet.
  const followBody = h("tbody");
  const followStatus = h("p", { class: "follow-up-status", id: "follow-up-status", role: "status", "aria-live": "polite" }, "Loading…");
  const followTable = h(
    "table",
    { "aria-describedby": "follow-up-caption", id: "follow-up" },
    h("caption", { id: "follow-up-caption", class: "visually-hidden" }, "Cases awaiting follow-up, soonest first"),
    h("thead", {}, h("tr", {}, ["Follow-up due", "Case", "Owner", "Customer", "Status"].map((c) => h("th", { scope: "col" }, c)))),
    followBody,
  );
  main().replaceChildren(
    h("h1", {}, "Escalation board"), filterBar, status, table,
    h("h2", { id: "follow-up-heading" }, "Awaiting follow-up"), followStatus, followTable,
  );

  let latest = 0; // a slow answer to an older request must not overwrite a newer one
  async function load() {
    const params = new URLSearchParams({ active: "true", limit: "500" });
    for (const [name, value] of Object.entries(filters)) if (value) params.set(name, value);
    const mine = ++latest;
    try {
      // Every page, following the cursor: a board that stopped at the first 500 would hide cases.
      const items = [];
      let page = await api(`/v1/escalations?${params}`);
      items.push(...page.items);
      while (page.next_cursor && mine === latest) {
        params.set("cursor", page.next_cursor);
        page = await api(`/v1/escalations?${params}`);
        items.push(...page.items);
      }
      if (mine !== latest) return;
      body.replaceChildren(...items.map(boardRow));
      status.textContent = `${items.length} open case${items.length === 1 ? "" : "s"}; updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      status.textContent = problemText(error);
    }
    try {
      const waiting = [];
      const followParams = new URLSearchParams({ awaiting_follow_up: "true", limit: "500" });
      for (const [name, value] of Object.entries(filters)) if (value && name !== "breached") followParams.set(name, value);
      let page = await api(`/v1/escalations?${followParams}`);
      waiting.push(...page.items);
      while (page.next_cursor && mine === latest) {
        followParams.set("cursor", page.next_cursor);
        page = await api(`/v1/escalations?${followParams}`);
        waiting.push(...page.items);
      }
      if (mine !== latest) return;
      waiting.sort((a, b) => (a.follow_up_due_at || "").localeCompare(b.follow_up_due_at || ""));
      followBody.replaceChildren(...waiting.map(followUpRow));
      followStatus.textContent = `${waiting.length} case${waiting.length === 1 ? "" : "s"} awaiting follow-up`;
    } catch (error) {
      followStatus.textContent = problemText(error);
    }
  }
  load();
  every(POLL_MS, load);
  every(1000, () => document.querySelectorAll(".countdown").forEach(paintCountdown));
}

function followUpRow(item) {
  return h(
    "tr",
    { "data-follow-up": item.case_id },
    h("td", {}, countdownEl(item.follow_up_due_at)),
    h("td", {}, h("a", { href: `#/case/${encodeURIComponent(item.case_id)}` }, item.title), h("br"), h("small", {}, item.case_id)),
    h("td", {}, item.owner || "unassigned"),
    h("td", {}, item.customer_name, h("br"), h("small", {}, item.customer_id)),
    h("td", {}, words(item.status)),
  );
}

function boardRow(item) {
  const flag = item.breached ? "breached" : item.at_risk ? "at-risk" : "";
  const badge = flag ? h("span", { class: `badge ${flag}` }, flag === "breached" ? "BREACHED" : "AT RISK") : null;
  return h(
    "tr",
    { class: flag, "data-case": item.case_id },
    h("td", {}, countdownEl(item.next_deadline_at), " ", badge),
    h("td", {}, words(item.next_deadline_kind) || "—"),
    h("td", {}, h("a", { href: `#/case/${encodeURIComponent(item.case_id)}` }, item.title), h("br"), h("small", {}, item.case_id)),
    h("td", {}, item.priority),
    h("td", {}, item.level),
    h("td", {}, item.owner || "unassigned"),
    h("td", {}, item.team || "—"),
    h("td", {}, item.customer_name, h("br"), h("small", {}, item.customer_id)),
    h("td", {}, words(item.category)),
    h("td", {}, words(item.status)),
  );
}

// ------------------------------------------------------------------ case page

async function showCase(caseId) {
  const root = main();
  root.replaceChildren(h("h1", {}, `Case ${caseId}`), h("p", { role: "status" }, "Loading…"));
  let state, audit, verification, offered;
  try {
    [state, audit, verification, offered] = await Promise.all([
      api(`/v1/escalations/${encodeURIComponent(caseId)}`),
      api(`/v1/escalations/${encodeURIComponent(caseId)}/audit`),
      api(`/v1/escalations/${encodeURIComponent(caseId)}/verify`),
      api(`/v1/escalations/${encodeURIComponent(caseId)}/commands`),
    ]);
  } catch (error) {
    root.replaceChildren(h("h1", {}, `Case ${caseId}`), alertBox(problemText(error)));
    return;
  }
  const verified = verification.ok
    ? h("span", { class: "badge ok", id: "verification" }, `Hash chain verified: ${verification.events} events`)
    : h("span", { class: "badge broken", id: "verification" }, `Hash chain BROKEN at version ${verification.broken.version}: ${verification.broken.reason}`);
  const timeline = h("ol", { class: "timeline", id: "timeline" }, audit.events.map(timelineItem));
  const asOfView = h("div", { id: "asof-state", "aria-live": "polite" });
  root.replaceChildren(
    h("h1", {}, state.title),
    h("p", {}, h("small", {}, caseId), " ", verified),
    h(
      "div",
      { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "now-h" }, h("h2", { id: "now-h" }, "Now"), stateFacts(state), deadlines(state)),
      h("section", { class: "card", "aria-labelledby": "act-h" }, h("h2", { id: "act-h" }, "Actions"), await commandForms(caseId, offered.commands)),
    ),
    h("section", { "aria-labelledby": "asof-h" }, h("h2", { id: "asof-h" }, "State as of an instant"), asOfPicker(caseId, audit.events, timeline, asOfView), asOfView),
    h("section", { "aria-labelledby": "tl-h" }, h("h2", { id: "tl-h" }, "Timeline"), timeline),
  );
  every(1000, () => document.querySelectorAll(".countdown").forEach(paintCountdown));
}

function facts(rows, attrs = {}) {
  return h("dl", { class: "facts", ...attrs }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-fact": k }, v)]));
}

function stateFacts(state) {
  const rows = [
    ["Status", words(state.status) + (state.paused ? ` (paused: ${words(state.paused.reason)})` : "")],
    ["Priority", state.priority],
    ["Level", state.level],
    ["Owner", state.owner || "unassigned (team queue)"],
    ["Team", state.team || "none"],
    ["Responders now", (state.responders || []).length ? state.responders.map((r) => `${r.name || r.id} (${words(r.via)})`).join(", ") : "none recorded"],
    ["Customer", `${state.customer.name} (${state.customer.id}, ${state.customer.tier})`],
    ["Category", words(state.category)],
    ["Opened", when(state.opened_at)],
    ["Policy", state.policy_label],
  ];
  return facts(rows, { id: "state-facts" });
}

function deadlines(state) {
  // Due instants come from the server, on the case's own calendar and with paused time added;
  // a suspended (paused) deadline does not count down.
  const running = state.deadlines || [];
  if (!running.length) return h("p", {}, "No running deadlines.");
  const rows = running.map((d) => {
    const breaches = (state.breaches || {})[d.kind] || 0;
    const clock = (state.clocks || {})[d.kind] || {};
    const countdownCell = d.suspended ? h("span", { class: "countdown" }, "paused") : countdownEl(d.due_at);
    return h("tr", {}, h("td", {}, words(d.kind)), h("td", {}, when(d.due_at)), h("td", {}, countdownCell), h("td", {}, breaches ? `${breaches} breach${breaches > 1 ? "es" : ""}` : clock.warned ? "warned" : "—"));
  });
  return h("table", {}, h("caption", { class: "visually-hidden" }, "Running deadlines"), h("thead", {}, h("tr", {}, ["Deadline", "Due", "Countdown", "So far"].map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows));
}

function timelineItem(event) {
  const details = event.details || ""; // the audit trail's own words (projections/audit_trail.py)
  return h(
    "li",
    { "data-version": event.version, "data-at": event.occurred_at },
    h("time", { datetime: event.occurred_at }, when(event.occurred_at)),
    " — ",
    h("strong", {}, event.action),
    " ",
    h("span", { class: "actor" }, `by ${event.actor.id} (${event.actor.role})`),
    details ? h("div", {}, details) : null,
  );
}

function asOfPicker(caseId, events, timeline, view) {
  const toLocalInput = (iso) => {
    const d = new Date(iso);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  };
  const picker = h("input", { id: "asof-time", type: "datetime-local", step: "1", value: toLocalInput(events.at(-1).occurred_at) });
  const slider = h("input", { id: "asof-slider", type: "range", min: "1", max: String(events.length), step: "1", value: String(events.length), "aria-valuetext": `after event ${events.length}` });
  async function show(iso) {
    try {
      const audit = await api(`/v1/escalations/${encodeURIComponent(caseId)}/audit?as_of=${encodeURIComponent(iso)}`);
      for (const li of timeline.children) li.classList.toggle("future", new Date(li.dataset.at) > new Date(iso));
      const s = audit.state;
      view.replaceChildren(
        s
          ? facts([["As of", when(iso)], ["Status", words(s.status)], ["Level", s.level], ["Priority", s.priority], ["Owner", s.owner || "unassigned"], ["Events so far", audit.events.length]])
          : h("p", {}, `The case did not exist yet at ${when(iso)}.`),
      );
    } catch (error) {
      view.replaceChildren(alertBox(problemText(error)));
    }
  }
  slider.addEventListener("input", () => {
    const event = events[Number(slider.value) - 1];
    slider.setAttribute("aria-valuetext", `after event ${slider.value}: ${event.action}`);
    picker.value = toLocalInput(event.occurred_at);
    show(event.occurred_at);
  });
  picker.addEventListener("change", () => picker.value && show(new Date(picker.value).toISOString()));
  return h(
    "div",
    { class: "asof" },
    h("div", {}, h("label", { for: "asof-slider" }, "Position in the timeline"), slider),
    h("div", {}, h("label", { for: "asof-time" }, "Or pick an instant (local time)"), picker),
  );
}

// ------------------------------------------------------------------ command forms (from the API's own schema)

async function commandForms(caseId, commands) {
  if (!commands.length) return h("p", { id: "no-actions" }, `Nothing your role (${me.role}) may do on this case now.`);
  openapi = openapi || (await (await fetch("/openapi.json")).json());
  return h("div", { id: "actions" }, commands.map((c) => commandForm(caseId, c)));
}

function resolve(schema) {
  while (schema && schema.$ref) schema = openapi.components.schemas[schema.$ref.split("/").pop()];
  if (schema?.anyOf) {
    const concrete = schema.anyOf.map(resolve).filter((s) => s && s.type !== "null");
    return { ...concrete[0], nullable: concrete.length < schema.anyOf.length, title: schema.title, description: schema.description ?? concrete[0]?.description };
  }
  if (schema?.allOf?.length === 1) return { ...resolve(schema.allOf[0]), title: schema.title, description: schema.description };
  return schema || {};
}

function commandForm(caseId, command) {
  const operation = openapi.paths[`/v1/escalations/{case_id}/${command.route}`].post;
  const schema = resolve(operation.requestBody.content["application/json"].schema);
  const formError = h("p", { class: "form-error", role: "alert" });
  const form = h("form", { novalidate: true, "data-command": command.name }, fieldsFor(schema, `${command.name}-`, ""), h("button", { type: "submit" }, words(command.name)), formError);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll(".error")) el.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    formError.textContent = "";
    try {
      await api(`/v1/escalations/${encodeURIComponent(caseId)}/${command.route}`, { method: "POST", body: collect(form, schema, ""), key: newKey() });
      route(); // the case changed: show it afresh
    } catch (error) {
      const fieldErrors = error.problem?.errors || [];
      let placed = 0;
      for (const { field, message } of fieldErrors) {
        const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
        const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
        if (input && slot) {
          input.setAttribute("aria-invalid", "true");
          slot.textContent = message;
          placed += 1;
        }
      }
      if (placed < fieldErrors.length || !fieldErrors.length) formError.textContent = problemText(error);
      (form.querySelector("[aria-invalid]") || formError).focus?.();
    }
  });
  return h("details", { class: "command" }, h("summary", {}, words(command.name)), form);
}

function fieldsFor(schema, idPrefix, namePrefix) {
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, raw]) => {
    const prop = resolve(raw);
    const fullName = namePrefix ? `${namePrefix}.${name}` : name;
    const id = `${idPrefix}${fullName.replaceAll(".", "-")}`;
    // The field's own title; a $ref'd enum's title names the type, not the field.
    const label = `${raw.title || words(name)}${required.has(name) ? " (required)" : ""}`;
    if (prop.type === "object" && prop.properties) {
      return h("fieldset", {}, h("legend", {}, label), fieldsFor(prop, idPrefix, fullName));
    }
    const errorId = `${id}-error`;
    const hintId = `${id}-hint`;
    let control;
    if (prop.enum) {
      control = h("select", { id, name: fullName }, h("option", { value: "" }, required.has(name) ? "choose…" : "none"), prop.enum.map((v) => h("option", { value: v }, words(String(v)))));
    } else if (prop.type === "boolean") {
      control = h("select", { id, name: fullName }, h("option", { value: "" }, "choose…"), h("option", { value: "true" }, "yes"), h("option", { value: "false" }, "no"));
    } else if (prop.type === "integer" || prop.type === "number") {
      control = h("input", { id, name: fullName, type: "number", step: prop.type === "integer" ? "1" : "any", min: prop.minimum, max: prop.maximum });
    } else if ((prop.maxLength || 0) > 200) {
      control = h("textarea", { id, name: fullName, rows: 3 });
    } else {
      control = h("input", { id, name: fullName, type: "text" });
    }
    control.dataset.kind = prop.enum ? "enum" : prop.type || "string";
    control.setAttribute("aria-describedby", `${hintId} ${errorId}`);
    const hint = [prop.description, prop.maxLength ? `at most ${prop.maxLength} characters` : null].filter(Boolean).join("; ");
    return h("div", { class: "field" }, h("label", { for: id }, label), control, h("span", { class: "hint", id: hintId }, hint), h("span", { class: "error", id: errorId, "data-error-for": fullName }));
  });
}

function collect(form, schema, namePrefix) {
  const body = {};
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    const prop = resolve(raw);
    const fullName = namePrefix ? `${namePrefix}.${name}` : name;
    if (prop.type === "object" && prop.properties) {
      const nested = collect(form, prop, fullName);
      if (Object.keys(nested).length) body[name] = nested;
      continue;
    }
    const control = form.querySelector(`[name="${CSS.escape(fullName)}"]`);
    const value = control?.value ?? "";
    if (value === "") continue; // absent: the API says whether it was needed
    const kind = control.dataset.kind;
    if (kind === "boolean") body[name] = value === "true";
    else if (kind === "integer") body[name] = Number.isInteger(Number(value)) ? Number(value) : value;
    else if (kind === "number") body[name] = Number.isFinite(Number(value)) ? Number(value) : value;
    else body[name] = value;
  }
  return body;
}

// ------------------------------------------------------------------ metrics

const PALETTE = ["#0b5cad", "#a4161a", "#1d6b2f", "#7a4b00", "#5b2a86", "#00616e"];

async function showMetrics() {
  const root = main();
  root.replaceChildren(h("h1", {}, "Metrics"), h("p", { role: "status" }, "Loading…"));
  let metrics, trend, systemic;
  try {
    [metrics, trend, systemic] = await Promise.all([api("/v1/metrics"), api("/v1/metrics/trend?bucket=week"), api("/v1/systemic-issues")]);
  } catch (error) {
    root.replaceChildren(h("h1", {}, "Metrics"), alertBox(problemText(error)));
    return;
  }
  const hours = (s) => (s === null || s === undefined ? null : s / 3600);
  const rate = (r) => Math.round(r * 1000) / 10;
  const ackUnit = unitFor(trend.time_to_acknowledge);
  const resolveUnit = unitFor(trend.time_to_resolve);
  root.replaceChildren(
    h("h1", {}, "Metrics"),
    h(
      "div",
      { class: "tiles" },
      tile("Cases", metrics.cases),
      tile("Hand-offs per case", metrics.handoffs_per_case.toFixed(2)),
      tile("Reopen rate", `${rate(metrics.reopen_rate)}%`),
      tile("Declined escalation requests", `${rate(metrics.declined_request_rate)}%`),
    ),
    h(
      "div",
      { class: "grid" },
      lineChart("chart-ack", `Median time to acknowledge (${ackUnit.name}), by week opened and priority`, trend.time_to_acknowledge, ackUnit.scale, ackUnit.name),
      lineChart("chart-resolve", `Median time to resolve (${resolveUnit.name}), by week opened and priority`, trend.time_to_resolve, resolveUnit.scale, resolveUnit.name),
      barChart("chart-breach-kind", "Breach rate by deadline kind (% of cases)", Object.entries(metrics.breach_rate.by_kind).map(([k, v]) => [words(k), rate(v.rate)])),
      barChart("chart-breach-level", "Breach rate by level (% of cases)", Object.entries(metrics.breach_rate.by_level).map(([k, v]) => [`Level ${k}`, rate(v.rate)])),
      barChart("chart-paused", "Paused time by reason (hours)", Object.entries(metrics.paused_seconds_by_reason).map(([k, v]) => [words(k), Math.round(hours(v) * 10) / 10])),
      barChart("chart-levels", "Cases by highest level reached", Object.entries(metrics.escalations_by_level_reached).map(([k, v]) => [`Level ${k}`, v])),
    ),
    h("h2", {}, "Systemic issues"),
    systemic.systemic_issues.length
      ? h("ul", { id: "systemic" }, systemic.systemic_issues.map((s) => h("li", {}, h("strong", {}, words(s.root_cause)), `: ${s.case_count} cases across ${s.customer_count} customers — `, caseLinks(s.case_ids))))
      : h("p", { id: "systemic" }, "No recurring root cause crosses the policy's threshold."),
    h("h2", {}, "Accounts at risk"),
    systemic.accounts_at_risk.length
      ? h("ul", {}, systemic.accounts_at_risk.map((a) => h("li", {}, h("strong", {}, a.customer_id), `: ${a.cases_in_window} cases in the window — `, caseLinks(a.case_ids))))
      : h("p", {}, "No account is at risk."),
  );
}

function unitFor(seriesByPriority) {
  // The largest unit in which the largest median is at least 1, so the axis reads naturally.
  const max = Math.max(0, ...Object.values(seriesByPriority || {}).flatMap((pts) => pts.map((p) => p.p50_seconds || 0)));
  const units = [["days", 86400], ["hours", 3600], ["minutes", 60], ["seconds", 1]];
  const [name, size] = units.find(([, size]) => max >= size) || units.at(-1);
  return { name, scale: (seconds) => (seconds === null || seconds === undefined ? null : seconds / size) };
}

function caseLinks(ids, shown = 10) {
  const links = ids.slice(0, shown).map((id, i) => [i ? ", " : "", h("a", { href: `#/case/${encodeURIComponent(id)}` }, id)]);
  return ids.length > shown ? [links, ` and ${ids.length - shown} more`] : links;
}

function tile(label, value) {
  return h("div", { class: "tile" }, h("strong", {}, value), label);
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function frame(id, caption, svg, legend, table) {
  return h("figure", { class: "chart card", id }, h("figcaption", {}, caption), svg, legend, table);
}

function lineChart(id, caption, seriesByPriority, scale, unit) {
  const W = 520, H = 240, L = 52, B = 30, T = 12, R = 16;
  const entries = Object.entries(seriesByPriority || {});
  const buckets = [...new Set(entries.flatMap(([, pts]) => pts.map((p) => p.bucket)))].sort();
  const values = entries.flatMap(([, pts]) => pts.map((p) => scale(p.p50_seconds)));
  const max = Math.max(1e-9, ...values);
  const x = (b) => L + (buckets.length < 2 ? (W - L - R) / 2 : (buckets.indexOf(b) * (W - L - R)) / (buckets.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t` }, s("title", { id: `${id}-t` }, caption));
  svg.append(s("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#4a5560" }), s("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#4a5560" }));
  for (const f of [0, 0.5, 1]) svg.append(s("text", { x: L - 6, y: y(max * f) + 5, "text-anchor": "end", "font-size": 14, fill: "#1b1f24" }, (max * f).toFixed(max * f >= 10 ? 0 : 1)));
  for (const b of [...new Set([buckets[0], buckets.at(-1)])].filter(Boolean)) svg.append(s("text", { x: x(b), y: H - 8, "text-anchor": "middle", "font-size": 14, fill: "#1b1f24" }, b));
  entries.forEach(([priority, pts], i) => {
    const colour = PALETTE[i % PALETTE.length];
    const path = pts.map((p, j) => `${j ? "L" : "M"}${x(p.bucket).toFixed(1)},${y(scale(p.p50_seconds)).toFixed(1)}`).join(" ");
    svg.append(s("path", { d: path, fill: "none", stroke: colour, "stroke-width": 2 }));
    for (const p of pts) svg.append(s("circle", { cx: x(p.bucket), cy: y(scale(p.p50_seconds)), r: 3.5, fill: colour }, s("title", {}, `${priority} ${p.bucket}: ${scale(p.p50_seconds).toFixed(2)} ${unit} (${p.count} cases)`)));
  });
  const legend = h("div", { class: "legend" }, entries.map(([priority], i) => h("span", { style: `--swatch: ${PALETTE[i % PALETTE.length]}` }, priority)));
  const empty = entries.length ? null : h("p", {}, "No data yet.");
  return frame(id, caption, svg, legend, empty);
}

function barChart(id, caption, pairs) {
  const W = 520, rowH = 30, L = 170, R = 70;
  const H = Math.max(1, pairs.length) * rowH + 10;
  const max = Math.max(1e-9, ...pairs.map(([, v]) => v));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t` }, s("title", { id: `${id}-t` }, caption));
  pairs.forEach(([label, value], i) => {
    const y = 5 + i * rowH;
    const width = ((W - L - R) * value) / max;
    svg.append(
      s("text", { x: L - 8, y: y + 19, "text-anchor": "end", "font-size": 14, fill: "#1b1f24" }, label),
      s("rect", { x: L, y: y + 4, width: Math.max(1, width), height: rowH - 8, fill: PALETTE[i % PALETTE.length] }),
      s("text", { x: L + width + 6, y: y + 19, "font-size": 14, fill: "#1b1f24" }, value),
    );
  });
  return frame(id, caption, svg, null, pairs.length ? null : h("p", {}, "No data yet."));
}

// ------------------------------------------------------------------ start

document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  location.hash = "#/signin";
  route();
});
window.addEventListener("hashchange", route);
route();
