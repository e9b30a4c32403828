/* keel web UI: charts (uPlot), chart settings kept in the URL, small conveniences.
   No inline scripts anywhere: the page's Content-Security-Policy allows only files from /ui/static. */
(function () {
  "use strict";
  var cache = {};

  function settings() {
    var q = new URLSearchParams(window.location.search);
    var smooth = parseFloat(q.get("smooth") || "0");
    if (!(smooth >= 0 && smooth < 1)) smooth = 0;
    return { axis: q.get("axis") || "step", smooth: smooth, log: q.get("log") === "1" };
  }

  /* Exponential moving average with debiasing; null gaps stay gaps (same as keel.server.ui.series.smooth). */
  function smooth(values, weight) {
    if (!weight) return values;
    var out = new Array(values.length), last = 0, count = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || !isFinite(v)) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * v;
      count++;
      out[i] = last / (1 - Math.pow(weight, count));
    }
    return out;
  }

  function colour(i, n) { return "hsl(" + Math.round(360 * i / Math.max(n, 1)) + ", 65%, 50%)"; }
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function draw(figure, data, opts) {
    var plot = figure.querySelector(".plot");
    if (figure._uplot) { figure._uplot.destroy(); figure._uplot = null; }
    plot.textContent = "";
    var note = figure.querySelector(".chart-note");
    if (!note) { note = document.createElement("p"); note.className = "chart-note"; figure.appendChild(note); }
    var multi = Array.isArray(data.runs);
    var columns = multi ? data.y : [data.y];
    var names = multi ? data.runs.map(function (r) { return r.name || r.run_id; }) : [data.key];
    var dropped = 0;
    var ys = columns.map(function (col) {
      var s = smooth(col, opts.smooth);
      if (opts.log) {
        s = s.map(function (v) { if (v !== null && v <= 0) { dropped++; return null; } return v; });
      }
      return s;
    });
    var fg = cssVar("--fg") || "#1b1f24", grid = cssVar("--line") || "#d0d7de";
    var axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    var series = [{ label: data.axis === "step" ? "step" : (data.axis === "time" ? "time" : "seconds") }];
    names.forEach(function (name, i) {
      series.push({ label: name, stroke: colour(i, names.length), width: 1.25, spanGaps: multi, points: multi ? { show: false } : {} });
    });
    var width = Math.max(240, plot.clientWidth || figure.clientWidth - 12);
    var options = {
      width: width,
      height: 240,
      series: series,
      legend: { show: names.length <= 12 },
      scales: { x: { time: data.axis === "time" }, y: opts.log ? { distr: 3 } : {} },
      axes: [axis, axis],
      cursor: { drag: { x: true, y: false } }
    };
    figure._uplot = new uPlot(options, [data.x].concat(ys), plot);
    var text = [];
    if (!multi) {
      text.push(data.points.toLocaleString() + " points drawn, at most " + data.max_points.toLocaleString() +
        " per series (longer histories are downsampled on the server, keeping spikes)");
      if (data.nonfinite) text.push(data.nonfinite + " NaN or infinite values shown as gaps");
    } else {
      text.push(names.length + " runs, " + data.x.length.toLocaleString() + " shared x positions");
    }
    if (dropped) text.push(dropped + " values ≤ 0 not drawn on the log scale");
    if (opts.smooth) text.push("smoothed " + opts.smooth);
    note.textContent = text.join(" · ");
  }

  function load(figure, opts) {
    var url = figure.getAttribute("data-src") + "&axis=" + encodeURIComponent(opts.axis);
    if (cache[url]) { draw(figure, cache[url], opts); return Promise.resolve(); }
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { throw new Error(res.body.error || "could not load the series"); }
        cache[url] = res.body;
        draw(figure, res.body, opts);
      })
      .catch(function (err) {
        var plot = figure.querySelector(".plot");
        plot.textContent = "";
        var p = document.createElement("p");
        p.className = "error";
        p.setAttribute("role", "alert");
        p.textContent = err.message;
        plot.appendChild(p);
      });
  }

  function drawAll() {
    var figures = Array.prototype.slice.call(document.querySelectorAll("figure.chart[data-src]"));
    if (!figures.length || typeof uPlot === "undefined") return;
    var opts = settings();
    var started = performance.now();
    Promise.all(figures.map(function (f) { return load(f, opts); })).then(function () {
      // the frame after this callback puts the canvases on screen: mark the time after it
      requestAnimationFrame(function () {
        setTimeout(function () {
          if (performance.mark) performance.mark("keel-charts-painted");
          document.body.setAttribute("data-charts-ready", String(Math.round(performance.now() - started)));
        }, 0);
      });
    });
  }

  function bindControls() {
    document.querySelectorAll("form[data-chart-controls]").forEach(function (form) {
      var out = form.querySelector("output");
      form.addEventListener("input", function (ev) {
        if (ev.target.name === "smooth" && out) out.textContent = ev.target.value;
      });
      form.addEventListener("change", function () {
        var q = new URLSearchParams(window.location.search);
        var data = new FormData(form);
        ["axis", "smooth", "log"].forEach(function (k) { q.delete(k); });
        if (data.get("axis") && data.get("axis") !== "step") q.set("axis", data.get("axis"));
        if (data.get("smooth") && parseFloat(data.get("smooth")) > 0) q.set("smooth", data.get("smooth"));
        if (data.get("log")) q.set("log", "1");
        var qs = q.toString();
        history.replaceState(null, "", window.location.pathname + (qs ? "?" + qs : ""));
        document.body.removeAttribute("data-charts-ready");
        drawAll();
      });
    });
  }

  function bindAutosubmit(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
  }

  /* MLflow's clients print "View run at <server>/#/experiments/<id>/runs/<run id>". The fragment never
     reaches a server: "/" redirects to the UI's home, the browser keeps the fragment, and here it
     becomes keel's own page (on the sign-in page of `keel server`: where signing in leads). */
  function mlflowTarget() {
    var m = /^#\/experiments\/([A-Za-z0-9_-]+)(?:\/runs\/([A-Za-z0-9_-]+))?/.exec(window.location.hash);
    if (!m) return null;
    return m[2] ? "/ui/runs/" + m[2] : "/ui/experiments/" + m[1];
  }
  var mlflowLink = mlflowTarget();
  if (mlflowLink && (window.location.pathname === "/ui/" || window.location.pathname === "/ui")) {
    window.location.replace(mlflowLink);
  }

  /* keel server's sign-in: the API answers JSON and sets the session cookie; the CSRF token it
     returns is kept for this tab and sent with every change (see htmx:configRequest below). */
  function bindLogin() {
    var form = document.querySelector("form[data-login]");
    if (!form) return;
    if (mlflowLink) form.setAttribute("data-next", mlflowLink);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var error = document.getElementById("login-error");
      var body = JSON.stringify({ user: form.elements.user.value, password: form.elements.password.value });
      fetch(form.getAttribute("action"), {
        method: "POST", credentials: "same-origin", body: body,
        headers: { "Content-Type": "application/json", "Accept": "application/json" }
      }).then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) throw new Error(data.message || data.error || "sign-in failed");
          try { window.sessionStorage.setItem("keel_csrf", data.csrf_token); } catch (e) { /* private mode */ }
          window.location.assign(form.getAttribute("data-next"));
        });
      }).catch(function (err) {
        error.textContent = err.message;
        error.hidden = false;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindLogin();
    bindAutosubmit(document);
    bindControls();
    drawAll();
  });
  document.addEventListener("htmx:afterSettle", function (ev) { bindAutosubmit(ev.target); });
  /* Behind `keel server` a browser session must send its CSRF token with every change; the login
     keeps it in sessionStorage under "keel_csrf" (a local `keel ui` has none and needs none). */
  document.addEventListener("htmx:configRequest", function (ev) {
    var token = null;
    try { token = window.sessionStorage.getItem("keel_csrf"); } catch (e) { token = null; }
    if (token && ev.detail.verb !== "get") ev.detail.headers["X-Keel-CSRF"] = token;
  });
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      document.querySelectorAll("figure.chart").forEach(function (f) {
        if (f._uplot) f._uplot.setSize({ width: Math.max(240, f.querySelector(".plot").clientWidth), height: 240 });
      });
    }, 150);
  });
})();
