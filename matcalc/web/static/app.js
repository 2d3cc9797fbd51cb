// matcalc playground: the form, the JSON API calls, KaTeX typesetting, tabs, permalink.
// Plain browser JavaScript, no build step; user text only ever goes into textContent.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("form");
  const formula = $("formula");
  const where = $("where");
  const op = $("op");
  const wrt = $("wrt");
  const layout = $("layout");
  const deriveButton = $("derive");
  const status = $("status");
  const errorBox = $("error");
  const answer = $("answer");
  const codeEl = $("code");
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));

  const TAB_NAMES = { latex: "LaTeX", numpy: "NumPy", jax: "JAX", torch: "PyTorch" };
  const PREFERRED = ["x", "w", "X", "W", "theta"];

  let lastAnswer = null; // the last successful /api/derive answer
  let lastRequest = null; // the request that produced it
  let currentTab = "latex";
  let parsedFor = null; // the formula text the variable list was built from
  let wantedWrt = null; // a variable asked for by a permalink or an example

  // ------------------------------------------------------------------ helpers

  function typeset(el, latex, display) {
    el.textContent = "";
    if (window.katex) {
      window.katex.render(latex, el, {
        throwOnError: false,
        displayMode: Boolean(display),
        strict: "ignore",
        output: "htmlAndMathml",
      });
    } else {
      el.textContent = latex; // KaTeX failed to load: show the source rather than nothing
    }
  }

  async function api(path, body) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      return { ok: false, data: { error: { type: "NetworkError",
        message: "the matcalc server does not answer; is `matcalc serve` still running?" } } };
    }
    let data;
    try {
      data = await response.json();
    } catch (err) {
      data = { error: { type: "HTTPError", message: `unexpected answer (${response.status})` } };
    }
    return { ok: response.ok, status: response.status, data };
  }

  function formulaRequest() {
    return { formula: formula.value, where: where.value };
  }

  function say(text) {
    status.textContent = text;
  }

  // ------------------------------------------------------------------ errors in place

  function showError(error) {
    const caret = errorBox.querySelector(".caret");
    const hasPosition = typeof error.column === "number" && typeof error.source_line === "string";
    if (hasPosition) {
      const before = Array.from(error.source_line).slice(0, error.column - 1)
        .map((ch) => (ch === "\t" ? "\t" : " ")).join("");
      caret.textContent = `${error.source_line}\n${before}^`;
      caret.hidden = false;
    } else {
      caret.textContent = "";
      caret.hidden = true;
    }
    const where = error.line ? ` (line ${error.line}, column ${error.column})` : "";
    errorBox.querySelector(".message").textContent = `${error.type}: ${error.message}${where}`;
    const hint = errorBox.querySelector(".hint");
    hint.textContent = error.hint ? `hint: ${error.hint}` : "";
    hint.hidden = !error.hint;
    errorBox.hidden = false;
    formula.setAttribute("aria-invalid", "true");
  }

  function clearError() {
    errorBox.hidden = true;
    formula.removeAttribute("aria-invalid");
  }

  // ------------------------------------------------------------------ variables

  function chooseVariable(variables) {
    const names = variables.map((v) => v.name);
    for (const name of [wantedWrt, wrt.value, ...PREFERRED]) {
      if (name && names.includes(name)) return name;
    }
    return names[0] || "";
  }

  function fillVariables(variables) {
    const chosen = chooseVariable(variables);
    wrt.textContent = "";
    for (const v of variables) {
      const option = document.createElement("option");
      option.value = v.name;
      option.textContent = `${v.name} — ${v.declaration}`;
      option.dataset.latex = v.latex;
      wrt.appendChild(option);
    }
    wrt.value = chosen;
    wantedWrt = null;
  }

  function showPreview(described) {
    typeset($("preview"), `f = ${described.latex}`, false);
  }

  // Reads the formula's variables (kinds and shapes) for the Variable menu. Resolves to true
  // (read), an error object (the formula is rejected) or null (nothing to read, or the text
  // changed meanwhile). Calls for the same text share one request.
  let parsing = null; // { key, promise } of the request in flight
  function refreshVariables() {
    const key = JSON.stringify(formulaRequest());
    if (!formula.value.trim()) return Promise.resolve(null);
    if (key === parsedFor) return Promise.resolve(true);
    if (parsing && parsing.key === key) return parsing.promise;
    const promise = (async () => {
      const reply = await api("/api/parse", formulaRequest());
      if (!parsing || parsing.key !== key) return null; // a newer edit is being read
      parsing = null;
      if (!reply.ok) return reply.data.error;
      parsedFor = key;
      fillVariables(reply.data.variables);
      showPreview(reply.data.formula);
      return true;
    })();
    parsing = { key, promise };
    return promise;
  }

  let parseTimer = null;
  function scheduleRefresh() {
    clearTimeout(parseTimer);
    parseTimer = setTimeout(() => { refreshVariables(); }, 300);
  }

  // ------------------------------------------------------------------ the answer

  function leftSide(request) {
    const option = wrt.selectedOptions[0];
    const x = option && option.dataset.latex ? option.dataset.latex : request.wrt;
    switch (request.op) {
      case "grad": return `\\nabla_{${x}} f`;
      case "hessian": return `\\nabla^{2}_{${x}} f`;
      case "jacobian":
        return request.options.layout === "denominator"
          ? `\\left(\\frac{\\partial f}{\\partial ${x}}\\right)^{\\top}`
          : `\\frac{\\partial f}{\\partial ${x}}`;
      case "derivative":
        return `\\frac{\\partial \\operatorname{vec} f}{\\partial \\operatorname{vec}(${x})^{\\top}}`;
      default: return "\\mathrm{d}f";
    }
  }

  function shapeText(shape) {
    return shape.join(" × ");
  }

  function renderDerivation(derivation) {
    const steps = $("steps");
    steps.textContent = "";
    const details = $("derivation");
    if (!derivation) {
      details.hidden = true;
      return;
    }
    details.hidden = false;
    if (derivation.error) {
      const item = document.createElement("li");
      item.textContent = `the derivation cannot be shown: ${derivation.error.message}`;
      steps.appendChild(item);
      $("derivation-count").textContent = "";
      $("copy-derivation").hidden = true;
      return;
    }
    for (const line of derivation.lines) {
      const item = document.createElement("li");
      const eq = document.createElement("div");
      eq.className = "eq";
      typeset(eq, line.latex, false);
      item.appendChild(eq);
      if (line.note_latex) {
        const note = document.createElement("div");
        note.className = "note";
        typeset(note, line.note_latex, false);
        item.appendChild(note);
      }
      for (const rule of line.rules) {
        const why = document.createElement("div");
        why.className = "why";
        const name = document.createElement("code");
        name.textContent = rule.name;
        why.appendChild(name);
        if (rule.identity_latex) {
          const identity = document.createElement("span");
          identity.className = "identity";
          typeset(identity, rule.identity_latex, false);
          why.append(": ", identity);
        }
        why.append(" (");
        for (const part of rule.source_parts || [{ text: rule.source }]) {
          if (part.math === undefined) {
            why.append(part.text);
          } else {
            const formula = document.createElement("span");
            typeset(formula, part.math, false);
            why.appendChild(formula);
          }
        }
        why.append(")");
        item.appendChild(why);
      }
      steps.appendChild(item);
    }
    const count = derivation.lines.length;
    $("derivation-count").textContent = `(${count} line${count === 1 ? "" : "s"})`;
    $("copy-derivation").hidden = !derivation.latex;
    $("copy-derivation").textContent = "Copy the derivation's LaTeX";
  }

  function codeFor(target) {
    const code = (lastAnswer && lastAnswer.code) || {};
    if (code[target]) return code[target];
    if (code[`${target}_error`]) return `# ${TAB_NAMES[target]} code is not available: ${code[`${target}_error`]}`;
    return `# no ${TAB_NAMES[target]} code for a ${lastRequest ? lastRequest.op : "result"}`;
  }

  function selectTab(target, focus) {
    currentTab = target;
    for (const tab of tabs) {
      const selected = tab.dataset.target === target;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      if (selected) {
        $("code-panel").setAttribute("aria-labelledby", tab.id);
        if (focus) tab.focus();
      }
    }
    codeEl.textContent = codeFor(target);
    $("copy").textContent = "Copy";
  }

  function permalink(request) {
    const params = new URLSearchParams();
    params.set("f", request.formula);
    if (request.where) params.set("where", request.where);
    params.set("op", request.op);
    params.set("wrt", request.wrt);
    if (request.op === "jacobian" && request.options.layout !== "numerator") {
      params.set("layout", request.options.layout);
    }
    return `${location.pathname}?${params.toString()}`;
  }

  function renderAnswer(request, data) {
    lastAnswer = data;
    lastRequest = request;
    showPreview(data.formula);
    typeset($("result"), `${leftSide(request)} = ${data.result.latex}`, true);
    $("result").dataset.latex = data.result.latex;
    $("result-meta").textContent =
      `${data.result.kind}, ${shapeText(data.result.shape)}   ·   text: ${data.result.text}`;
    renderDerivation(data.derivation);
    selectTab(currentTab, false);
    for (const id of ["check-verdict", "claim-verdict"]) $(id).hidden = true;
    $("check").disabled = request.op === "differential";
    $("claim").disabled = request.op === "differential";
    const link = permalink(request);
    $("permalink").href = link;
    history.replaceState(null, "", link);
    answer.hidden = false;
  }

  // ------------------------------------------------------------------ actions

  function deriveRequest(options) {
    return {
      formula: formula.value,
      where: where.value,
      op: op.value,
      wrt: wrt.value,
      options: Object.assign({ layout: layout.value }, options || {}),
    };
  }

  // reveal: move focus to the answer (after choosing an example); otherwise only scroll it
  // into view when it is below the screen (a phone), leaving the focus in the form.
  function showAnswer(reveal) {
    if (reveal) {
      $("answer-title").focus({ preventScroll: true });
      answer.scrollIntoView({ block: "start" });
    } else if (answer.getBoundingClientRect().top > window.innerHeight) {
      answer.scrollIntoView({ block: "nearest" });
    }
  }

  async function derive(reveal) {
    clearError();
    if (!formula.value.trim()) {
      showError({ type: "Empty", message: "type a formula first", hint: "for example ||A x - b||_2^2" });
      formula.focus();
      return;
    }
    clearTimeout(parseTimer);
    deriveButton.disabled = true;
    say("Deriving…");
    try {
      const parsed = await refreshVariables();
      if (parsed !== true && parsed !== null) {
        say("");
        showError(parsed);
        return;
      }
      const request = deriveRequest();
      const reply = await api("/api/derive", request);
      if (!reply.ok) {
        say("");
        showError(reply.data.error);
        return;
      }
      renderAnswer(request, reply.data);
      say(`Derived the ${op.selectedOptions[0].textContent} with respect to ${request.wrt}.`);
      showAnswer(reveal === true);
    } finally {
      deriveButton.disabled = false;
    }
  }

  function verdict(el, kind, text) {
    el.className = `verdict ${kind}`;
    el.textContent = text;
    el.hidden = false;
  }

  async function check() {
    if (!lastRequest) return;
    const button = $("check");
    const el = $("check-verdict");
    button.disabled = true;
    verdict(el, "info", "Checking entry by entry with SymPy…");
    const request = Object.assign({}, lastRequest, {
      options: Object.assign({}, lastRequest.options, { check: true, derivation: false, code: false }),
    });
    const reply = await api("/api/derive", request);
    button.disabled = false;
    if (!reply.ok) {
      verdict(el, "bad", `${reply.data.error.type}: ${reply.data.error.message}`);
    } else if (reply.data.check.ok) {
      verdict(el, "good", `✓ verified: ${reply.data.check.report}`);
    } else {
      verdict(el, "bad", `✗ the check failed: ${reply.data.check.report}`);
    }
  }

  async function checkClaim(event) {
    event.preventDefault();
    const el = $("claim-verdict");
    const claim = $("claim").value.trim();
    if (!lastRequest) {
      verdict(el, "info", "derive a result first, then type your own answer");
      return;
    }
    if (!claim) {
      verdict(el, "info", "type your answer, e.g. 2 A^T (A x - b)");
      return;
    }
    verdict(el, "info", "Checking your answer…");
    const request = Object.assign({}, lastRequest, {
      options: Object.assign({}, lastRequest.options, { claim, derivation: false, code: false }),
    });
    const reply = await api("/api/derive", request);
    if (!reply.ok) {
      verdict(el, "bad", `${reply.data.error.type}: ${reply.data.error.message}` +
        (reply.data.error.hint ? `\nhint: ${reply.data.error.hint}` : ""));
      return;
    }
    const result = reply.data.claim;
    if (result.error) {
      const e = result.error;
      const caret = typeof e.column === "number" && typeof e.source_line === "string"
        ? `\n${e.source_line}\n${" ".repeat(Math.max(0, e.column - 1))}^` : "";
      verdict(el, "bad", `Your answer could not be read: ${e.message}${caret}` +
        (e.hint ? `\nhint: ${e.hint}` : ""));
    } else if (result.ok) {
      verdict(el, "good", `✓ ${result.report}`);
    } else {
      verdict(el, "bad", `✗ ${result.report}`);
    }
  }

  async function copyText(text, button, what) {
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (err) {
      const scratch = document.createElement("textarea");
      scratch.value = text;
      scratch.setAttribute("readonly", "");
      scratch.style.position = "absolute";
      scratch.style.left = "-9999px";
      document.body.appendChild(scratch);
      scratch.select();
      copied = document.execCommand("copy");
      scratch.remove();
    }
    button.textContent = copied ? "Copied" : "Copy failed";
    say(copied ? `${what} copied to the clipboard.` : "Could not copy; select the text instead.");
  }

  function copyCode() {
    return copyText(codeEl.textContent, $("copy"), `${TAB_NAMES[currentTab]} code`);
  }

  function copyDerivation() {
    const latex = lastAnswer && lastAnswer.derivation ? lastAnswer.derivation.latex : "";
    return copyText(latex, $("copy-derivation"), "The derivation's LaTeX");
  }

  // ------------------------------------------------------------------ gallery

  function choose(select, value, fallback) {
    const known = Array.from(select.options).some((option) => option.value === value);
    select.value = known ? value : fallback;
  }

  function fill(example) {
    formula.value = example.formula;
    where.value = example.where || "";
    choose(op, example.op, "grad");
    choose(layout, example.layout, "numerator");
    wantedWrt = example.wrt || null;
    parsedFor = null;
    syncLayout();
  }

  async function loadGallery() {
    let data;
    try {
      data = await (await fetch("/gallery.json")).json();
    } catch (err) {
      return;
    }
    const host = $("gallery-sections");
    for (const section of data.sections) {
      const block = document.createElement("div");
      const title = document.createElement("h3");
      title.textContent = section.title;
      const list = document.createElement("ul");
      for (const example of section.examples) {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        const label = document.createElement("span");
        label.className = "label";
        label.textContent = `${example.label} · ${example.op} w.r.t. ${example.wrt}`;
        const math = document.createElement("span");
        math.className = "formula";
        math.textContent = example.formula + (example.where ? ` where ${example.where}` : "");
        button.append(math, label);
        button.setAttribute("aria-label",
          `${example.label}: ${example.formula}${example.where ? ` where ${example.where}` : ""}, ${example.op} with respect to ${example.wrt}`);
        button.addEventListener("click", () => {
          fill(example);
          derive(true);
        });
        item.appendChild(button);
        list.appendChild(item);
      }
      block.append(title, list);
      host.appendChild(block);
    }
  }

  // ------------------------------------------------------------------ wiring

  function syncLayout() {
    layout.disabled = op.value !== "jacobian";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    derive();
  });
  formula.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      derive();
    }
  });
  formula.addEventListener("input", scheduleRefresh);
  where.addEventListener("input", scheduleRefresh);
  op.addEventListener("change", syncLayout);
  $("check").addEventListener("click", check);
  $("claim-form").addEventListener("submit", checkClaim);
  $("copy").addEventListener("click", copyCode);
  $("copy-derivation").addEventListener("click", copyDerivation);
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab.dataset.target, false));
    tab.addEventListener("keydown", (event) => {
      const i = tabs.indexOf(tab);
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      if (event.key in moves) {
        event.preventDefault();
        const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
        selectTab(next.dataset.target, true);
      }
    });
  }

  function start() {
    syncLayout();
    loadGallery();
    const params = new URLSearchParams(location.search);
    if (params.get("f")) {
      fill({
        formula: params.get("f"),
        where: params.get("where") || "",
        op: params.get("op") || "grad",
        wrt: params.get("wrt"),
        layout: params.get("layout") || "numerator",
      });
      derive();
    }
    document.body.dataset.ready = "true";
  }

  start();
})();
