// The runyard dashboard: one page, routed by the URL's # part, drawn from
// the JSON API of `runyard serve` (docs/api.md). Every view is built once
// when it is opened and its data redrawn every 2 s while the tab is
// visible; nothing reloads the page and nothing comes from the network
// but this server.
"use strict";

(function () {
  const POLL_MS = 2000;
  const STATES = ["queued", "scheduled", "blocked", "running", "succeeded", "dead", "cancelled"];
  const OUTCOMES = ["succeeded", "failed", "panicked", "crashed", "timed_out", "cancelled"];
  const meta = (name) => {
    const m = document.querySelector('meta[name="' + name + '"]');
    return m ? m.getAttribute("content") : "";
  };
  const CSRF = meta("runyard-csrf");
  const READ_ONLY = meta("runyard-read-only") === "true";
  const SESSION = meta("runyard-session") === "true";

  // ---- elements ----------------------------------------------------------

  // An element with attributes (`on...` are listeners) and children
  // (strings become text, never markup).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAll(el, attrs);
    append(el, children);
    return el;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAll(el, attrs);
    append(el, children);
    return el;
  }

  function setAll(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function fill(el, ...children) {
    el.replaceChildren();
    append(el, children);
  }

  // ---- the API -----------------------------------------------------------

  async function answer(r) {
    let body = null;
    try {
      body = await r.json();
    } catch (_) {
      body = null;
    }
    if (r.status === 401) {
      location.assign("/login");
      throw new Error("not logged in");
    }
    if (!r.ok) {
      throw new Error((body && body.error) || "HTTP " + r.status);
    }
    return body;
  }

  async function get(path) {
    const r = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    return answer(r);
  }

  // An action: the session's CSRF token goes with it.
  async function send(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (CSRF) headers["X-Runyard-CSRF"] = CSRF;
    const r = await fetch(path, {
      method,
      credentials: "same-origin",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return answer(r);
  }

  const post = (path, body) => send("POST", path, body);

  // ---- words and numbers ---------------------------------------------------

  function ago(t) {
    if (!t) return "";
    const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000);
    return duration(s) + " ago";
  }

  function duration(s) {
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 90) return s.toFixed(s < 10 ? 1 : 0) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }

  function ms(x) {
    return x < 1000 ? x.toFixed(x < 10 ? 2 : 0) + " ms" : duration(x / 1000);
  }

  function when(t) {
    if (!t) return "";
    return t.replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  const badge = (state) => h("span", { class: "badge st-" + state, "data-state": state }, state);
  const jobLink = (id) => h("a", { href: "#/job/" + id, class: "job-link" }, "#" + id);

  function errorText(e) {
    if (e === null || e === undefined) return "";
    return typeof e === "string" ? e : JSON.stringify(e, null, 2);
  }

  // ---- routing -------------------------------------------------------------

  // The route and its query: `#/jobs?state=dead` -> ["jobs", {state: "dead"}].
  function route() {
    const raw = location.hash.replace(/^#\/?/, "");
    const [path, query] = raw.split("?");
    const params = {};
    new URLSearchParams(query || "").forEach((v, k) => {
      if (v !== "") params[k] = v;
    });
    return [path || "", params];
  }

  function hashOf(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
    const qs = q.toString();
    return "#/" + path + (qs ? "?" + qs : "");
  }

  const main = document.getElementById("main");
  let view = null; // { update: async () => void }
  let generation = 0;

  async function open() {
    generation += 1;
    const mine = generation;
    const [path, params] = route();
    const name = path.startsWith("job/") ? "job" : path || "overview";
    document.querySelectorAll("nav a").forEach((a) => {
      a.classList.toggle("active", a.dataset.nav === name || (name === "job" && a.dataset.nav === "jobs"));
    });
    main.replaceChildren();
    const make = {
      overview: overviewView,
      jobs: () => jobsView(params, false),
      dead: () => jobsView(Object.assign({}, params, { state: "dead" }), true),
      workers: workersView,
      tasks: tasksView,
      limits: limitsView,
      schedules: schedulesView,
      job: () => jobView(path.slice(4)),
    }[name];
    view = make ? make() : notFoundView(path);
    document.title = "runyard: " + name;
    await refresh(mine);
  }

  // Updates run one after another, each on the view open when it starts.
  let busy = false;
  let chain = Promise.resolve();
  function refresh(mine) {
    busy = true;
    chain = chain.then(() => update(mine)).finally(() => {
      busy = false;
    });
    return chain;
  }

  async function update(mine) {
    if (!view) return;
    const live = document.getElementById("live");
    try {
      await view.update();
      // Times shown as "... ago" move on even where nothing was redrawn.
      document.querySelectorAll("[data-ago]").forEach((el) => {
        el.textContent = ago(el.dataset.ago);
      });
      if (mine === undefined || mine === generation) {
        live.classList.remove("down");
        live.textContent = "live";
        live.title = "updated " + new Date().toLocaleTimeString();
      }
    } catch (e) {
      live.classList.add("down");
      live.textContent = "offline";
      live.title = String(e.message || e);
      if (view.failed) view.failed(e);
    }
  }

  function notice(el, text, kind) {
    fill(el, text);
    el.className = "notice " + (kind || "");
    el.hidden = !text;
  }

  // ---- overview ------------------------------------------------------------

  function overviewView() {
    const states = h("div", { class: "cards", id: "state-counts" });
    const oldest = h("div", { class: "card", id: "oldest" });
    const workers = h("div", { class: "card", id: "worker-count" });
    const through = h("div", { class: "chart", id: "throughput" });
    const rate = h("div", { class: "chart", id: "failure-rate" });
    const tasks = h("table", { class: "grid", id: "task-counts" });
    const err = h("p", { class: "notice", hidden: true });
    main.append(
      h("h1", {}, "Overview"),
      err,
      states,
      h("div", { class: "row" }, oldest, workers),
      h("div", { class: "row charts" },
        h("section", {}, h("h2", {}, "Attempts finished per minute, last hour"), through),
        h("section", {}, h("h2", {}, "Failure rate per minute, last hour"), rate)),
      h("h2", {}, "Jobs per task and state"),
      tasks,
    );
    return {
      failed: (e) => notice(err, String(e.message || e), "error"),
      update: async () => {
        const [t, st, q, w] = await Promise.all([
          get("/api/v1/tasks"),
          // A queue that cannot count finished attempts still shows the rest.
          get("/api/v1/stats?window=1h").catch((e) => ({ error: String(e.message || e) })),
          get("/api/v1/jobs?state=queued&limit=1"),
          get("/api/v1/workers"),
        ]);
        notice(err, "");
        const total = {};
        STATES.forEach((k) => (total[k] = 0));
        for (const task of t.tasks) STATES.forEach((k) => (total[k] += task[k] || 0));
        fill(states, STATES.map((k) =>
          h("a", { class: "card count st-" + k, href: hashOf("jobs", { state: k }), "data-count": k },
            h("span", { class: "n" }, total[k]), h("span", { class: "label" }, k))));
        const job = q.jobs[0];
        fill(oldest, h("h2", {}, "Oldest waiting job"), job
          ? h("p", {}, jobLink(job.id), " ", job.task, ", submitted ", ago(job.enqueued_at))
          : h("p", { class: "muted" }, "No job is waiting."));
        const leases = w.workers.reduce((a, x) => a + x.leases, 0);
        fill(workers, h("h2", {}, "Workers"),
          h("p", {}, h("a", { href: "#/workers" }, w.workers.length + " live"), ", holding " + leases + " leases"));
        if (st.error) {
          for (const el of [through, rate]) fill(el, h("p", { class: "muted" }, "No chart: " + st.error));
        } else {
          drawThroughput(through, st);
          drawFailureRate(rate, st);
        }
        fill(tasks,
          h("thead", {}, h("tr", {}, h("th", {}, "task"), STATES.map((k) => h("th", { class: "num" }, k)), h("th", { class: "num" }, "total"))),
          h("tbody", {}, t.tasks.length ? t.tasks.map((task) =>
            h("tr", {},
              h("td", {}, h("a", { href: hashOf("jobs", { task: task.task }) }, task.task)),
              STATES.map((k) => h("td", { class: "num" }, task[k]
                ? h("a", { href: hashOf("jobs", { task: task.task, state: k }) }, task[k]) : "0")),
              h("td", { class: "num" }, task.total)))
            : h("tr", {}, h("td", { colspan: STATES.length + 2, class: "muted" }, "No job in this queue."))));
      },
    };
  }

  // A chart's frame: its size, margins and scale.
  const W = 600, H = 180, ML = 40, MR = 8, MT = 10, MB = 22;

  function frame(minutes, top, unit) {
    const svg = s("svg", { viewBox: "0 0 " + W + " " + H, role: "img", class: "plot" });
    const y = (v) => MT + (H - MT - MB) * (1 - v / top);
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4;
      svg.append(s("line", { x1: ML, x2: W - MR, y1: y(v), y2: y(v), class: "gridline" }));
      svg.append(s("text", { x: ML - 4, y: y(v) + 4, "text-anchor": "end", class: "axis" },
        (Number.isInteger(v) ? v : v.toFixed(1)) + unit));
    }
    const n = minutes.length;
    [[0, "start"], [Math.floor(n / 2), "middle"], [n - 1, "end"]].forEach(([i, anchor]) => {
      const t = new Date(Date.parse(minutes[i].minute));
      const x = anchor === "start" ? ML : anchor === "end" ? W - MR : ML + ((W - ML - MR) * (i + 0.5)) / n;
      svg.append(s("text", { x, y: H - 6, "text-anchor": anchor, class: "axis" }, t.toTimeString().slice(0, 5)));
    });
    return { svg, y, bar: (W - ML - MR) / n };
  }

  function drawThroughput(el, st) {
    const mins = st.minutes;
    const failed = (m) => OUTCOMES.slice(1).reduce((a, k) => a + m[k], 0);
    const peak = Math.max(1, ...mins.map((m) => m.succeeded + failed(m)));
    const top = Math.ceil(peak / 4) * 4;
    const f = frame(mins, top, "");
    mins.forEach((m, i) => {
      const x = ML + i * f.bar + 1;
      const ok = m.succeeded, bad = failed(m);
      const title = when(m.minute) + ": " + ok + " succeeded, " + bad + " did not";
      if (ok) f.svg.append(s("rect", { x, y: f.y(ok), width: Math.max(1, f.bar - 2), height: f.y(0) - f.y(ok), class: "ok" }, s("title", {}, title)));
      if (bad) f.svg.append(s("rect", { x, y: f.y(ok + bad), width: Math.max(1, f.bar - 2), height: f.y(ok) - f.y(ok + bad), class: "bad" }, s("title", {}, title)));
    });
    const t = st.totals;
    fill(el, f.svg, h("p", { class: "legend" },
      h("span", { class: "key ok" }), " succeeded " + t.succeeded + "  ",
      h("span", { class: "key bad" }), " failed, panicked, crashed, timed out or cancelled " + failed(t)));
  }

  function drawFailureRate(el, st) {
    const mins = st.minutes;
    const f = frame(mins, 100, "%");
    let d = "";
    mins.forEach((m, i) => {
      const all = OUTCOMES.reduce((a, k) => a + m[k], 0);
      if (!all) return;
      const pct = (100 * (all - m.succeeded)) / all;
      const x = ML + (i + 0.5) * f.bar;
      d += (d ? " L" : "M") + x.toFixed(1) + " " + f.y(pct).toFixed(1);
      f.svg.append(s("circle", { cx: x, cy: f.y(pct), r: 2.5, class: "dot" },
        s("title", {}, when(m.minute) + ": " + pct.toFixed(0) + "% of " + all + " attempts did not succeed")));
    });
    if (d) f.svg.insertBefore(s("path", { d, class: "line" }), f.svg.querySelector("circle"));
    const t = st.totals;
    const all = OUTCOMES.reduce((a, k) => a + t[k], 0);
    fill(el, f.svg, h("p", { class: "legend" }, all
      ? ((100 * (all - t.succeeded)) / all).toFixed(1) + "% of " + all + " attempts in the hour did not succeed"
      : "No attempt ended in the last hour."));
  }

  // ---- jobs and dead jobs ----------------------------------------------------

  // `dead`: the dead jobs' page (state fixed, selection and bulk retry).
  function jobsView(params, dead) {
    const path = dead ? "dead" : "jobs";
    const selected = new Set();
    const retried = new Map(); // id -> last known state
    const filters = dead ? ["task", "key", "q", "since", "until"] : ["state", "task", "key", "q", "since", "until"];

    const input = (k) => {
      if (k === "state") {
        return h("select", { name: "state", id: "f-state" },
          h("option", { value: "" }, "any state"),
          STATES.map((st) => h("option", { value: st, selected: params.state === st }, st)));
      }
      const hints = { task: "task", key: "key, e.g. tenant:42", q: "text in parameters or errors", since: "since, e.g. 2026-12-01T10:00:00Z", until: "until (RFC 3339)" };
      return h("input", { name: k, id: "f-" + k, value: params[k] || "", placeholder: hints[k], class: "f-" + k });
    };
    const form = h("form", { class: "filters", id: "filters", onsubmit: (e) => {
      e.preventDefault();
      const p = {};
      for (const k of filters) p[k] = form.elements[k].value.trim();
      location.hash = hashOf(path, p);
    } }, filters.map(input), h("button", { type: "submit", id: "apply" }, "Filter"),
    h("a", { href: "#/" + path, class: "clear" }, "clear"));

    const err = h("p", { class: "notice", hidden: true });
    const done = h("p", { class: "notice", hidden: true, id: "action-result" });
    const table = h("table", { class: "grid jobs", id: "jobs" });
    const pager = h("div", { class: "pager" });
    const actions = h("div", { class: "actions", hidden: READ_ONLY || !dead });
    const retriedBox = h("section", { id: "retried", hidden: true });

    const filterBody = () => {
      const f = { state: "dead" };
      for (const k of filters) if (params[k]) f[k] = params[k];
      return f;
    };
    const retry = async (body) => {
      try {
        const r = await post("/api/v1/jobs/retry", body);
        r.done.forEach((id) => retried.set(id, "queued"));
        selected.clear();
        lastPage = null;
        const skipped = r.skipped.map((x) => "#" + x.id + ": " + x.why).join("; ");
        notice(done, "Retried " + r.done.length + " of " + r.matched + (skipped ? ". Skipped " + skipped : "") + ".", "ok");
        await refresh();
      } catch (e) {
        notice(done, "Retry refused: " + e.message, "error");
      }
    };
    const retrySelected = h("button", { type: "button", id: "retry-selected", disabled: true, onclick: () => {
      if (selected.size) retry({ ids: Array.from(selected) });
    } }, "Retry selected");
    const retryAll = h("button", { type: "button", id: "retry-all", onclick: () => {
      if (confirm("Retry every dead job matching this filter?")) retry({ filter: filterBody() });
    } }, "Retry all matching");
    // A read-only server takes no action: no button is made.
    if (dead && !READ_ONLY) append(actions, [retrySelected, " ", retryAll]);
    const counted = () => {
      retrySelected.disabled = selected.size === 0;
      retrySelected.textContent = "Retry selected" + (selected.size ? " (" + selected.size + ")" : "");
    };

    main.append(h("h1", {}, dead ? "Dead jobs" : "Jobs"), form, actions, done, retriedBox, err, table, pager);

    let lastPage = null;
    // The jobs retried from this page, with their state as it changes.
    const showRetried = async () => {
      if (!retried.size) return;
      const ids = Array.from(retried.keys()).slice(-20);
      const views = await Promise.all(ids.map((id) => get("/api/v1/jobs/" + id).catch(() => null)));
      views.forEach((v, i) => v && retried.set(ids[i], v.state));
      retriedBox.hidden = false;
      fill(retriedBox, h("h2", {}, "Retried from this page"),
        h("ul", { class: "retried" }, ids.map((id) =>
          h("li", { "data-job": id }, jobLink(id), " ", badge(retried.get(id))))));
    };

    const go = (cursor) => {
      location.hash = hashOf(path, Object.assign({}, params, { cursor }));
    };

    return {
      failed: (e) => notice(err, String(e.message || e), "error"),
      update: async () => {
        const q = new URLSearchParams();
        for (const k of ["state"].concat(filters)) if (params[k]) q.set(k, params[k]);
        if (params.cursor) q.set("cursor", params.cursor);
        q.set("limit", "50");
        const page = await get("/api/v1/jobs?" + q.toString());
        notice(err, "");
        await showRetried();
        // Redrawn only when it changed: a row being clicked stays put.
        const drawn = JSON.stringify(page);
        if (drawn === lastPage) return;
        lastPage = drawn;
        const pick = dead && !READ_ONLY;
        const all = h("input", { type: "checkbox", title: "select the jobs of this page", onchange: (e) => {
          page.jobs.forEach((j) => (e.target.checked ? selected.add(j.id) : selected.delete(j.id)));
          table.querySelectorAll("tbody input[type=checkbox]").forEach((c) => (c.checked = e.target.checked));
          counted();
        } });
        fill(table,
          h("thead", {}, h("tr", {}, pick && h("th", {}, all), ["id", "task", "state", "attempts", "last outcome", "last error", "submitted"].map((x) => h("th", {}, x)))),
          h("tbody", {}, page.jobs.length ? page.jobs.map((j) =>
            h("tr", { "data-job": j.id },
              pick && h("td", {}, h("input", { type: "checkbox", class: "pick", "data-job": j.id, checked: selected.has(j.id), onchange: (e) => {
                if (e.target.checked) selected.add(j.id); else selected.delete(j.id);
                counted();
              } })),
              h("td", {}, jobLink(j.id)),
              h("td", {}, j.task, j.name ? h("span", { class: "muted" }, " " + j.name) : ""),
              h("td", {}, badge(j.state)),
              h("td", { class: "num" }, j.attempts),
              h("td", {}, j.last_outcome || ""),
              h("td", { class: "error-cell", title: j.last_error || "" }, j.last_error || ""),
              h("td", { title: j.enqueued_at, "data-ago": j.enqueued_at }, ago(j.enqueued_at))))
            : h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No job matches."))));
        counted();
        fill(pager,
          h("button", { type: "button", id: "first-page", disabled: !params.cursor, onclick: () => go(null) }, "First page"),
          " ",
          h("button", { type: "button", id: "next-page", disabled: !page.next_cursor, onclick: () => go(page.next_cursor) }, "Next page"),
          h("span", { class: "muted" }, " " + page.jobs.length + " on this page"));
      },
    };
  }

  // ---- one job ---------------------------------------------------------------

  function jobView(idText) {
    const id = Number(idText);
    const head = h("div", { class: "job-head" });
    const done = h("p", { class: "notice", hidden: true, id: "action-result" });
    const err = h("p", { class: "notice", hidden: true });
    const timeline = h("div", { class: "timeline", id: "timeline" });
    const attempts = h("ol", { class: "attempts", id: "attempts" });
    const details = h("div", { class: "row details" });
    main.append(head, done, err, h("h2", {}, "Attempts"), timeline, attempts, details);
    let lastJob = null;
    const act = async (what) => {
      try {
        const r = await post("/api/v1/jobs/" + id + "/" + what);
        notice(done, "Job #" + id + ": " + r.action.replace("_", " ") + " (now " + r.state + ").", "ok");
        await refresh();
      } catch (e) {
        notice(done, what + " refused: " + e.message, "error");
      }
    };
    return {
      failed: (e) => notice(err, String(e.message || e), "error"),
      update: async () => {
        if (!Number.isSafeInteger(id) || id < 0) throw new Error(idText + " is not a job id");
        const j = await get("/api/v1/jobs/" + id);
        notice(err, "");
        const drawn = JSON.stringify(j);
        if (drawn === lastJob) return;
        lastJob = drawn;
        const buttons = READ_ONLY ? [] : [
          (j.state === "dead" || j.state === "cancelled") && h("button", { type: "button", id: "retry-job", onclick: () => act("retry") }, "Retry"),
          !["succeeded", "dead", "cancelled"].includes(j.state) && h("button", { type: "button", id: "cancel-job", onclick: () => act("cancel") }, "Cancel"),
        ];
        fill(head, h("h1", {}, "Job #" + j.id + " ", h("span", { class: "task" }, j.task), " ", badge(j.state)),
          h("div", { class: "actions" }, buttons));
        drawTimeline(timeline, j.attempts);
        fill(attempts, j.attempts.length ? j.attempts.map((a) =>
          h("li", { class: "attempt o-" + a.outcome, "data-attempt": a.attempt },
            h("div", { class: "attempt-head" },
              h("strong", {}, "Attempt " + a.attempt), " ", h("span", { class: "badge o-" + a.outcome }, a.outcome),
              h("span", { class: "muted" }, " started " + when(a.started_at) + ", ran " + ms(a.duration_ms) + ", waited " + ms(a.queued_ms))),
            a.error !== null && a.error !== undefined && h("pre", { class: "error-text" }, errorText(a.error)),
            a.detail && h("pre", { class: "detail" }, JSON.stringify(a.detail, null, 2))))
          : h("li", { class: "muted" }, "No attempt yet."));
        const set = j.settings || {};
        const text = (v) => (v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v));
        const keys = j.keys || {};
        const opt = [
          ["submitted", when(j.enqueued_at)],
          ["runs at", j.run_at ? when(j.run_at) : ""],
          ["max attempts", text(set.max_attempts)],
          ["backoff", text(set.backoff)],
          ["timeout", text(set.timeout)],
          ["priority", text(set.priority)],
          ["mode", text(set.mode) + (set.isolate ? " (isolated)" : "")],
          ["unique key", keys.unique],
          ["concurrency key", keys.concurrency],
          ["rate key", keys.rate],
          ["name", j.name],
          ["after", (j.after || []).map((a) => (typeof a === "number" ? "#" + a : JSON.stringify(a))).join(", ")],
          ["run if", j.run_if],
          ["cancelled by", j.cancelled_by ? "#" + j.cancelled_by.job + (j.cancelled_by.name ? " (" + j.cancelled_by.name + ")" : "") : ""],
          ["jobs after it", (j.dependents || []).map((d) => "#" + d).join(", ")],
          ["held by", j.hold ? JSON.stringify(j.hold) : ""],
          ["schedule", j.schedule ? j.schedule + (j.tick ? " tick " + when(j.tick) : "") : ""],
        ].filter(([, v]) => v !== undefined && v !== null && v !== "");
        fill(details,
          h("section", {}, h("h2", {}, "Parameters"), h("pre", { id: "params" }, JSON.stringify(j.params, null, 2))),
          h("section", {}, h("h2", {}, "Options"), h("table", { class: "kv" }, opt.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))))),
          j.output !== null && j.output !== undefined && h("section", {}, h("h2", {}, "Output"), h("pre", { id: "output" }, JSON.stringify(j.output, null, 2))));
      },
    };
  }

  // Each attempt as a bar on one time axis, from the first start to the
  // last end; the gaps between them are the waits (backoff, queue).
  function drawTimeline(el, attempts) {
    if (!attempts.length) return el.replaceChildren();
    const spans = attempts.map((a) => {
      const start = Date.parse(a.started_at);
      return { a, start, end: start + Math.max(a.duration_ms, 0) };
    });
    const t0 = Math.min(...spans.map((x) => x.start));
    const t1 = Math.max(...spans.map((x) => x.end), t0 + 1);
    const w = 1200, row = 24, left = 80;
    const svg = s("svg", { viewBox: "0 0 " + w + " " + (spans.length * row + 24), class: "plot", role: "img" });
    const x = (t) => left + ((w - left - 10) * (t - t0)) / (t1 - t0);
    spans.forEach((sp, i) => {
      const y = i * row + 4;
      svg.append(s("text", { x: 4, y: y + 13, class: "axis" }, "attempt " + sp.a.attempt));
      svg.append(s("rect", { x: x(sp.start), y, width: Math.max(3, x(sp.end) - x(sp.start)), height: row - 8, class: "o-" + sp.a.outcome },
        s("title", {}, "attempt " + sp.a.attempt + ": " + sp.a.outcome + ", " + ms(sp.a.duration_ms))));
    });
    const yAxis = spans.length * row + 18;
    svg.append(s("text", { x: left, y: yAxis, class: "axis" }, when(new Date(t0).toISOString())));
    svg.append(s("text", { x: w - 10, y: yAxis, class: "axis", "text-anchor": "end" }, "+" + ms(t1 - t0)));
    fill(el, svg);
  }

  // ---- tasks, limits and schedules -------------------------------------------

  // The flow control of the queue (`GET /api/v1/limits`), or null on a
  // queue that keeps none (404).
  async function flowOf() {
    try {
      return await get("/api/v1/limits");
    } catch (e) {
      if (/keeps no limits/.test(String(e.message))) return null;
      throw e;
    }
  }

  // An action's button: while its request is under way it is disabled;
  // the answer, or the refusal, goes to `done`.
  function actionButton(attrs, label, done, run) {
    const b = h("button", Object.assign({ type: "button" }, attrs, {
      onclick: async () => {
        b.disabled = true;
        try {
          notice(done, await run(), "ok");
          await refresh();
        } catch (e) {
          notice(done, label + " refused: " + e.message, "error");
        } finally {
          b.disabled = false;
        }
      },
    }), label);
    return b;
  }

  function tasksView() {
    const err = h("p", { class: "notice", hidden: true });
    const done = h("p", { class: "notice", hidden: true, id: "action-result" });
    const all = h("div", { class: "actions", id: "pause-all-box" });
    const banner = h("p", { class: "notice warn", id: "paused-all", hidden: true },
      "Every task is paused: no worker claims any job until they are resumed.");
    const table = h("table", { class: "grid", id: "tasks" });
    main.append(h("h1", {}, "Tasks"), all, done, banner, err, table);
    let last = null;
    const pauseAll = actionButton({ id: "pause-all" }, "Pause all", done, async () => {
      await post("/api/v1/tasks/pause");
      return "Every task paused: running attempts go on, no job is claimed.";
    });
    const resumeAll = actionButton({ id: "resume-all" }, "Resume all", done, async () => {
      const r = await post("/api/v1/tasks/resume");
      return r.action === "nothing_paused" ? "Nothing was paused." : "Every task resumed.";
    });
    return {
      failed: (e) => notice(err, String(e.message || e), "error"),
      update: async () => {
        const [t, flow] = await Promise.all([get("/api/v1/tasks"), flowOf()]);
        notice(err, "");
        const drawn = JSON.stringify([t, flow && [flow.paused, flow.paused_all]]);
        if (drawn === last) return;
        last = drawn;
        const paused = new Set(flow ? flow.paused : []);
        const rows = t.tasks.slice();
        // A task paused by name with no job yet still has a row.
        for (const name of paused) {
          if (!rows.some((x) => x.task === name)) {
            const empty = { task: name, total: 0 };
            STATES.forEach((k) => (empty[k] = 0));
            rows.push(empty);
          }
        }
        rows.sort((a, b) => (a.task < b.task ? -1 : a.task > b.task ? 1 : 0));
        banner.hidden = !(flow && flow.paused_all);
        const acts = flow && !READ_ONLY;
        fill(all, acts ? [pauseAll, " ", resumeAll] : [],
          flow ? "" : h("span", { class: "muted" }, "This queue keeps no flow control: tasks cannot be paused."));
        const task = (x) => encodeURIComponent(x.task);
        fill(table,
          h("thead", {}, h("tr", {}, h("th", {}, "task"), STATES.map((k) => h("th", { class: "num" }, k)),
            h("th", { class: "num" }, "total"), flow && h("th", {}, "paused"), acts && h("th", {}, ""))),
          h("tbody", {}, rows.length ? rows.map((x) => {
            const p = paused.has(x.task);
            return h("tr", { "data-task": x.task },
              h("td", {}, h("a", { href: hashOf("jobs", { task: x.task }) }, x.task)),
              STATES.map((k) => h("td", { class: "num", "data-state": k }, x[k]
                ? h("a", { href: hashOf("jobs", { task: x.task, state: k }) }, x[k]) : "0")),
              h("td", { class: "num" }, x.total),
              flow && h("td", { class: "paused-cell" }, p || flow.paused_all
                ? h("span", { class: "badge paused", "data-paused": "true" }, p ? "paused" : "paused (all)")
                : h("span", { class: "muted" }, "no")),
              acts && h("td", {}, p
                ? actionButton({ class: "resume-task", "data-task": x.task }, "Resume", done, async () => {
                  await post("/api/v1/tasks/" + task(x) + "/resume");
                  return "Task " + x.task + " resumed.";
                })
                : actionButton({ class: "pause-task", "data-task": x.task }, "Pause", done, async () => {
                  await post("/api/v1/tasks/" + task(x) + "/pause");
                  return "Task " + x.task + " paused: its jobs wait, its running attempts go on.";
                })));
          }) : h("tr", {}, h("td", { colspan: STATES.length + 4, class: "muted" }, "No task has jobs in this queue."))));
      },
    };
  }

  // A limit's target as words, and as the {kind}/{name} of its route.
  function targetOf(t) {
    if (t.task !== undefined) return { label: "task " + t.task, kind: "task", name: t.task };
    const name = t.key.value === undefined ? t.key.name : t.key.name + ":" + t.key.value;
    return { label: "key " + name + (t.key.value === undefined ? " (each value)" : ""), kind: "key", name };
  }

  const sameTarget = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  function limitsView() {
    const err = h("p", { class: "notice", hidden: true });
    const done = h("p", { class: "notice", hidden: true, id: "action-result" });
    const table = h("table", { class: "grid", id: "limits" });
    const heldBox = h("section", { id: "held" });
    const kind = h("select", { name: "kind", id: "l-kind" },
      h("option", { value: "task" }, "task"), h("option", { value: "key" }, "key"));
    const name = h("input", { name: "name", id: "l-name", placeholder: "task, or key e.g. tenant:42", required: true });
    const conc = h("input", { name: "concurrency", id: "l-concurrency", placeholder: "at once, e.g. 4", inputmode: "numeric" });
    const rate = h("input", { name: "rate", id: "l-rate", placeholder: "rate, e.g. 10/s" });
    const form = h("form", { class: "filters", id: "limit-form", onsubmit: async (e) => {
      e.preventDefault();
      const body = {};
      const c = conc.value.trim(), r = rate.value.trim(), n = name.value.trim();
      if (c !== "") body.concurrency = /^\d+$/.test(c) ? Number(c) : c;
      if (r !== "") body.rate = r;
      try {
        const a = await send("PUT", "/api/v1/limits/" + kind.value + "/" + encodeURIComponent(n), body);
        notice(done, "Limit of " + targetOf(a.target).label + " set.", "ok");
        conc.value = "";
        rate.value = "";
        await refresh();
      } catch (x) {
        notice(done, "Setting the limit refused: " + x.message, "error");
      }
    } }, kind, name, conc, rate, h("button", { type: "submit", id: "set-limit" }, "Set limit"));
    main.append(h("h1", {}, "Limits"), READ_ONLY ? "" : form, done, err, table, heldBox);
    let last = null;
    return {
      failed: (e) => notice(err, String(e.message || e), "error"),
      update: async () => {
        const [flow, t] = await Promise.all([flowOf(), get("/api/v1/tasks")]);
        notice(err, "");
        const drawn = JSON.stringify([flow, t]);
        if (drawn === last) return;
        last = drawn;
        if (!flow) {
          form.hidden = true;
          fill(table, h("tbody", {}, h("tr", {}, h("td", { class: "muted" }, "This queue keeps no limits."))));
          return heldBox.replaceChildren();
        }
        const running = new Map(t.tasks.map((x) => [x.task, x.running]));
        // The due jobs each limit holds back.
        const heldBy = (l) => flow.held
          .filter((x) => (x.hold.kind === "concurrency" || x.hold.kind === "rate") && sameTarget(x.hold.target, l.target))
          .reduce((a, x) => a + x.jobs, 0);
        const acts = !READ_ONLY;
        fill(table,
          h("thead", {}, h("tr", {}, ["limit of", "at once", "rate", "in use", "jobs held"].map((x) => h("th", {}, x)), acts && h("th", {}, ""))),
          h("tbody", {}, flow.limits.length ? flow.limits.map((l) => {
            const tg = targetOf(l.target);
            // A task's limit counts its running attempts; the API does not
            // count a key's slots.
            const use = tg.kind === "task" && l.concurrency ? (running.get(tg.name) || 0) + " of " + l.concurrency : "";
            return h("tr", { "data-limit": tg.kind + "/" + tg.name },
              h("td", {}, tg.label),
              h("td", { class: "num" }, l.concurrency || ""),
              h("td", {}, l.rate || ""),
              h("td", { class: "num", title: tg.kind === "key" ? "a key's slots in use are not counted by the API" : "attempts of the task running" }, use),
              h("td", { class: "num" }, heldBy(l)),
              acts && h("td", {}, actionButton({ class: "clear-limit", "data-limit": tg.kind + "/" + tg.name }, "Clear", done, async () => {
                await send("DELETE", "/api/v1/limits/" + tg.kind + "/" + encodeURIComponent(tg.name));
                return "Limit of " + tg.label + " cleared.";
              })));
          }) : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No limit is stored in this queue."))));
        fill(heldBox, flow.held.length ? [h("h2", {}, "What holds due jobs"),
          h("ul", { class: "held" }, flow.held.map((x) => h("li", {}, x.jobs + " job" + (x.jobs === 1 ? "" : "s") + ": " + x.says)))] : []);
      },
    };
  }

  function schedulesView() {
    const err = h("p", { class: "notice", hidden: true });
    const done = h("p", { class: "notice", hidden: true, id: "action-result" });
    const table = h("table", { class: "grid", id: "schedules" });
    main.append(h("h1", {}, "Schedules"), done, err, table);
    let last = null;
    const path = (sc, what) => "/api/v1/schedules/" + encodeURIComponent(sc.name) + "/" + what;
    return {
      failed: (e) => notice(err, String(e.message || e), "error"),
      update: async () => {
        let list;
        try {
          list = (await get("/api/v1/schedules")).schedules;
        } catch (e) {
          if (!/keeps no schedules/.test(String(e.message))) throw e;
          list = null;
        }
        notice(err, "");
        const drawn = JSON.stringify(list);
        if (drawn === last) return;
        last = drawn;
        if (!list) return fill(table, h("tbody", {}, h("tr", {}, h("td", { class: "muted" }, "This queue keeps no schedules."))));
        const acts = !READ_ONLY;
        fill(table,
          h("thead", {}, h("tr", {}, ["name", "when", "tasks", "next tick", "last fire", "fired", "skipped", "missed", "state"].map((x) => h("th", {}, x)), acts && h("th", {}, ""))),
          h("tbody", {}, list.length ? list.map((sc) => {
            const f = sc.last_fire;
            return h("tr", { "data-schedule": sc.name },
              h("td", {}, sc.name),
              h("td", { title: "overlap " + sc.overlap + ", misfire grace " + sc.misfire_grace + ", catch-up " + sc.catch_up }, sc.spec),
              h("td", {}, sc.tasks.join(", ")),
              h("td", { title: sc.next_tick || "" }, sc.paused ? h("span", { class: "muted" }, "none while paused") : when(sc.next_tick)),
              h("td", { class: "last-fire" }, f ? [when(f.tick), " ", jobLink(f.job), " ", badge(f.state)] : h("span", { class: "muted" }, "never")),
              h("td", { class: "num" }, sc.fired), h("td", { class: "num" }, sc.skipped), h("td", { class: "num" }, sc.missed),
              h("td", {}, sc.paused ? h("span", { class: "badge paused", "data-paused": "true" }, "paused") : h("span", { class: "muted" }, "active")),
              acts && h("td", { class: "buttons" },
                sc.paused
                  ? actionButton({ class: "resume-schedule", "data-schedule": sc.name }, "Resume", done, async () => {
                    await post(path(sc, "resume"));
                    return "Schedule " + sc.name + " resumed.";
                  })
                  : actionButton({ class: "pause-schedule", "data-schedule": sc.name }, "Pause", done, async () => {
                    await post(path(sc, "pause"));
                    return "Schedule " + sc.name + " paused: it settles no tick until resumed.";
                  }),
                " ",
                actionButton({ class: "trigger-schedule", "data-schedule": sc.name }, "Run now", done, async () => {
                  const r = await post(path(sc, "trigger"));
                  return "Schedule " + sc.name + " triggered: job " + r.jobs.map((j) => "#" + j).join(", ") + " submitted.";
                })));
          }) : h("tr", {}, h("td", { colspan: 10, class: "muted" }, "No schedule in this queue."))));
      },
    };
  }

  // ---- workers -----------------------------------------------------------------

  function workersView() {
    const err = h("p", { class: "notice", hidden: true });
    const table = h("table", { class: "grid", id: "workers" });
    main.append(h("h1", {}, "Workers"), err, table);
    return {
      failed: (e) => notice(err, String(e.message || e), "error"),
      update: async () => {
        const w = await get("/api/v1/workers");
        notice(err, "");
        fill(table,
          h("thead", {}, h("tr", {}, ["name", "host", "pid", "started", "last heartbeat", "lease", "leases held"].map((x) => h("th", {}, x)))),
          h("tbody", {}, w.workers.length ? w.workers.map((x) =>
            h("tr", { "data-worker": x.name },
              h("td", {}, x.name), h("td", {}, x.host), h("td", { class: "num" }, x.pid),
              h("td", { title: x.started_at }, ago(x.started_at)),
              h("td", { title: x.last_heartbeat, class: x.heartbeat_age_s > x.lease_s / 2 ? "late" : "" }, duration(x.heartbeat_age_s) + " ago"),
              h("td", { class: "num" }, duration(x.lease_s)),
              h("td", { class: "num" }, x.leases)))
            : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No live worker."))));
      },
    };
  }

  function notFoundView(path) {
    main.append(h("h1", {}, "No such page"), h("p", {}, "#/" + path + " is not a page: the pages are ",
      h("a", { href: "#/" }, "Overview"), ", ", h("a", { href: "#/jobs" }, "Jobs"), ", ",
      h("a", { href: "#/dead" }, "Dead"), ", ", h("a", { href: "#/tasks" }, "Tasks"), ", ",
      h("a", { href: "#/limits" }, "Limits"), ", ", h("a", { href: "#/schedules" }, "Schedules"), " and ",
      h("a", { href: "#/workers" }, "Workers"), "."));
    return { update: async () => {} };
  }

  // ---- start -----------------------------------------------------------------

  document.getElementById("read-only").hidden = !READ_ONLY;
  const logout = document.getElementById("logout");
  logout.hidden = !SESSION;
  logout.addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", credentials: "same-origin", headers: { "X-Runyard-CSRF": CSRF } });
    location.assign("/login");
  });
  window.addEventListener("hashchange", open);
  setInterval(() => {
    if (!document.hidden && !busy) refresh(generation);
  }, POLL_MS);
  open();
})();
