// verity's report: charts on one shared, zoomable time axis, drawn on canvases from the columnar
// data embedded in #report-data. Only what is visible is drawn; operations narrower than a pixel
// are merged per pixel column, so a million operations cost one pass over the visible ones.
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var api = { ready: false, stats: {}, errors: [] };
  window.verity = api;

  // ---- decode the columns ----
  var n = D.ops.s.length;
  var start = new Float64Array(n), end = new Float64Array(n), ev = new Float64Array(n);
  var lane = new Uint32Array(n), kind = new Uint8Array(n), fcol = new Uint16Array(n);
  var t = 0, ix = 0, i;
  for (i = 0; i < n; i++) {
    t += D.ops.s[i];
    start[i] = t;
    var d = D.ops.d[i];
    end[i] = d < 0 ? D.span_us : t + d;
    lane[i] = D.ops.l[i];
    kind[i] = D.ops.k[i];
    fcol[i] = D.ops.f[i];
    ix += D.ops.i[i];
    ev[i] = ix;
  }
  var lanes = Math.max(D.lanes.length, 1);
  var laneCount = new Uint32Array(lanes);
  for (i = 0; i < n; i++) laneCount[lane[i]]++;
  var perLane = [];
  for (i = 0; i < lanes; i++) perLane.push(new Int32Array(laneCount[i]));
  var fill = new Uint32Array(lanes);
  for (i = 0; i < n; i++) perLane[lane[i]][fill[lane[i]]++] = i;

  var KIND = ['ok', 'fail', 'info', 'pending'];
  var KIND_COLOR = ['#3c9a5f', '#d64541', '#f0a030', '#9a9a9a'];
  var SERIES = ['#1f77b4', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f', '#ff7f0e'];
  var BAND_COLOR = { partition: 'rgba(70,120,220,0.13)', kill: 'rgba(214,69,65,0.13)', pause: 'rgba(240,160,48,0.16)' };
  var NODE_COLOR = { killed: '#d64541', paused: '#f0a030', cut: '#4678dc', slow: '#9467bd' };
  var LEFT = 96, RIGHT = 12;

  var view = { t0: 0, t1: Math.max(D.span_us, 1) };
  var highlight = null; // operation numbers to outline
  var charts = [];
  var area = document.getElementById('chart-area');
  var tip = document.getElementById('tooltip');

  function fmtTime(us) {
    if (D.clock === 'events') return 'event ' + Math.round(us / 1000);
    var s = us / 1e6;
    if (s >= 100) return s.toFixed(0) + ' s';
    if (s >= 1) return s.toFixed(2) + ' s';
    return (us / 1000).toFixed(1) + ' ms';
  }
  function fmtLatency(us) {
    if (D.clock === 'events') return Math.round(us / 1000) + ' events';
    if (us >= 1e6) return (us / 1e6).toFixed(2) + ' s';
    if (us >= 1000) return (us / 1000).toFixed(1) + ' ms';
    return us.toFixed(0) + ' µs';
  }

  // ---- a chart: a canvas sharing the time axis ----
  function chart(id, title, height, draw, hover) {
    var box = document.createElement('div');
    box.className = 'chart';
    box.id = 'chart-' + id;
    var h = document.createElement('h3');
    h.textContent = title;
    var legend = document.createElement('div');
    legend.className = 'legend';
    var canvas = document.createElement('canvas');
    canvas.style.height = height + 'px';
    box.appendChild(h);
    box.appendChild(legend);
    box.appendChild(canvas);
    area.appendChild(box);
    var c = { id: id, canvas: canvas, height: height, draw: draw, hover: hover, legend: legend };
    charts.push(c);
    attach(c);
    return c;
  }

  function xOf(w) {
    var span = view.t1 - view.t0;
    var inner = w - LEFT - RIGHT;
    return {
      x: function (us) { return LEFT + ((us - view.t0) / span) * inner; },
      t: function (px) { return view.t0 + ((px - LEFT) / inner) * span; }
    };
  }

  function bands(ctx, w, h, X, top) {
    var drawn = 0;
    for (var b = 0; b < D.bands.length; b++) {
      var band = D.bands[b];
      if (band.e < view.t0 || band.s > view.t1) continue;
      var x0 = Math.max(LEFT, X.x(band.s)), x1 = Math.min(w - RIGHT, X.x(band.e));
      ctx.fillStyle = BAND_COLOR[band.kind] || 'rgba(128,128,128,0.14)';
      ctx.fillRect(x0, top || 0, Math.max(1, x1 - x0), h - (top || 0) - 18);
      drawn++;
    }
    return drawn;
  }

  function axis(ctx, w, h, X) {
    ctx.strokeStyle = '#bbb';
    ctx.beginPath();
    ctx.moveTo(LEFT, h - 18);
    ctx.lineTo(w - RIGHT, h - 18);
    ctx.stroke();
    var span = view.t1 - view.t0;
    var step = Math.pow(10, Math.floor(Math.log10(span / 6)));
    if (span / step > 12) step *= 5; else if (span / step > 6) step *= 2;
    ctx.fillStyle = '#555';
    ctx.font = '11px sans-serif';
    ctx.textAlign = 'center';
    for (var tt = Math.ceil(view.t0 / step) * step; tt <= view.t1; tt += step) {
      var x = X.x(tt);
      ctx.fillRect(x, h - 18, 1, 4);
      ctx.fillText(fmtTime(tt), x, h - 5);
    }
    ctx.textAlign = 'left';
  }

  function render(c) {
    var dpr = window.devicePixelRatio || 1;
    var w = c.canvas.clientWidth || 1000;
    var h = c.height;
    if (c.canvas.width !== Math.round(w * dpr) || c.canvas.height !== Math.round(h * dpr)) {
      c.canvas.width = Math.round(w * dpr);
      c.canvas.height = Math.round(h * dpr);
    }
    var ctx = c.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    var X = xOf(w);
    var st = { bands: bands(ctx, w, h, X) };
    c.draw(ctx, w, h, X, st);
    axis(ctx, w, h, X);
    api.stats[c.id] = st;
  }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      charts.forEach(render);
      document.getElementById('range').textContent =
        fmtTime(view.t0) + ' – ' + fmtTime(view.t1) + ' of ' + fmtTime(D.span_us);
    });
  }
  function drawNow() { charts.forEach(render); }

  // ---- zoom and pan, shared by every chart ----
  function setView(t0, t1) {
    var span = D.span_us;
    var width = Math.max(t1 - t0, 10);
    if (width > span) width = span;
    t0 = Math.max(0, Math.min(t0, span - width));
    view.t0 = t0;
    view.t1 = t0 + width;
    redraw();
  }
  function zoom(factor, centerFrac) {
    var c = view.t0 + (view.t1 - view.t0) * (centerFrac === undefined ? 0.5 : centerFrac);
    setView(c - (c - view.t0) * factor, c + (view.t1 - c) * factor);
  }
  function pan(frac) {
    var dt = (view.t1 - view.t0) * frac;
    setView(view.t0 + dt, view.t1 + dt);
  }
  function attach(c) {
    var drag = null;
    c.canvas.addEventListener('wheel', function (e) {
      e.preventDefault();
      var r = c.canvas.getBoundingClientRect();
      var frac = (e.clientX - r.left - LEFT) / (r.width - LEFT - RIGHT);
      zoom(Math.exp(e.deltaY * 0.0015), Math.max(0, Math.min(1, frac)));
    }, { passive: false });
    c.canvas.addEventListener('mousedown', function (e) {
      drag = { x: e.clientX, t0: view.t0, t1: view.t1 };
    });
    window.addEventListener('mouseup', function () { drag = null; });
    c.canvas.addEventListener('mousemove', function (e) {
      var r = c.canvas.getBoundingClientRect();
      if (drag) {
        var dt = ((drag.x - e.clientX) / (r.width - LEFT - RIGHT)) * (drag.t1 - drag.t0);
        setView(drag.t0 + dt, drag.t1 + dt);
        tip.hidden = true;
        return;
      }
      var text = c.hover ? c.hover(e.clientX - r.left, e.clientY - r.top, r.width) : null;
      if (text) {
        tip.textContent = text;
        tip.hidden = false;
        tip.style.left = (e.pageX + 12) + 'px';
        tip.style.top = (e.pageY + 12) + 'px';
      } else {
        tip.hidden = true;
      }
    });
    c.canvas.addEventListener('mouseleave', function () { tip.hidden = true; });
  }

  function legend(c, items) {
    c.legend.innerHTML = '';
    items.forEach(function (it) {
      var s = document.createElement('span');
      var sw = document.createElement('i');
      sw.style.background = it[1];
      s.appendChild(sw);
      s.appendChild(document.createTextNode(it[0]));
      c.legend.appendChild(s);
    });
  }

  // ---- the timeline: one lane per worker ----
  function firstEnding(ops, t0) {
    var lo = 0, hi = ops.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (end[ops[mid]] < t0) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  var laneH = Math.max(3, Math.min(16, Math.floor(560 / lanes)));
  var timelineH = lanes * laneH + 30;
  var timeline = chart('timeline', 'Operations by worker (ok · fail · info · pending), faults shaded', timelineH,
    function (ctx, w, h, X, st) {
      var drawn = 0, merged = 0;
      ctx.font = '10px sans-serif';
      for (var l = 0; l < lanes; l++) {
        var y = 4 + l * laneH, bh = Math.max(2, laneH - 2);
        if (laneH >= 9) {
          ctx.fillStyle = '#444';
          ctx.fillText(D.lanes[l] || '', 4, y + bh - 1);
        }
        var ops = perLane[l];
        var px = -1, worst = -1;
        for (var j = firstEnding(ops, view.t0); j < ops.length; j++) {
          var o = ops[j];
          if (start[o] > view.t1) break;
          var x0 = Math.max(LEFT, X.x(start[o])), x1 = Math.min(w - RIGHT, X.x(end[o]));
          if (x1 - x0 < 1) {
            var p = Math.floor(x0);
            if (p !== px) {
              if (worst >= 0) { ctx.fillStyle = KIND_COLOR[worst]; ctx.fillRect(px, y, 1, bh); }
              px = p; worst = -1;
            }
            // A pixel shows the most doubtful outcome it holds: info beats fail beats ok.
            var k = kind[o];
            var rank = k === 0 ? 0 : k === 1 ? 1 : 2;
            if (worst < 0 || rank > (worst === 0 ? 0 : worst === 1 ? 1 : 2)) worst = k;
            merged++;
          } else {
            ctx.fillStyle = KIND_COLOR[kind[o]];
            ctx.fillRect(x0, y, x1 - x0, bh);
            drawn++;
          }
        }
        if (worst >= 0) { ctx.fillStyle = KIND_COLOR[worst]; ctx.fillRect(px, y, 1, bh); }
      }
      if (highlight) {
        ctx.strokeStyle = '#000';
        ctx.lineWidth = 2;
        highlight.forEach(function (o) {
          if (end[o] < view.t0 || start[o] > view.t1) return;
          var x0 = X.x(start[o]), x1 = Math.max(X.x(end[o]), x0 + 3);
          ctx.strokeRect(x0 - 1, 3 + lane[o] * laneH, x1 - x0 + 2, Math.max(3, laneH));
        });
        ctx.lineWidth = 1;
      }
      st.drawn = drawn;
      st.merged = merged;
    },
    function (x, y, w) {
      var l = Math.floor((y - 4) / laneH);
      if (l < 0 || l >= lanes) return null;
      var X = xOf(w), tt = X.t(x), slack = (view.t1 - view.t0) / (w - LEFT - RIGHT) * 3;
      var ops = perLane[l];
      var j = firstEnding(ops, tt - slack);
      if (j >= ops.length) return null;
      var o = ops[j];
      if (start[o] > tt + slack) return null;
      var txt = (D.lanes[l] || '') + ': ' + D.f_names[fcol[o]] + ' → ' + KIND[kind[o]] +
        '\nevent ' + ev[o] + ', at ' + fmtTime(start[o]) +
        (kind[o] === 3 ? ', never completed' : ', took ' + fmtLatency(end[o] - start[o]));
      if (D.text[o] !== undefined) txt += '\n' + D.text[o];
      return txt;
    });
  legend(timeline, KIND.map(function (k, j) { return [k, KIND_COLOR[j]]; }));

  // ---- bucketed series ----
  var B = D.buckets, W = B.width_us;
  function visibleBuckets() {
    var lo = Math.max(0, Math.floor(view.t0 / W)), hi = Math.min(B.ok.length - 1, Math.floor(view.t1 / W));
    return [lo, hi];
  }
  function line(ctx, X, ys, y, color, dash) {
    var r = visibleBuckets();
    ctx.strokeStyle = color;
    ctx.setLineDash(dash || []);
    ctx.beginPath();
    var on = false;
    for (var b = r[0]; b <= r[1]; b++) {
      var v = ys[b];
      if (v === null || v === undefined || v < 0) { on = false; continue; }
      var x0 = X.x(b * W), x1 = X.x((b + 1) * W), yy = y(v);
      if (!on) { ctx.moveTo(x0, yy); on = true; } else ctx.lineTo(x0, yy);
      ctx.lineTo(x1, yy);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
  function yLinear(h, max) {
    return function (v) { return 8 + (1 - v / (max || 1)) * (h - 30); };
  }
  function yLabels(ctx, h, max, fmt) {
    ctx.fillStyle = '#555';
    ctx.font = '10px sans-serif';
    ctx.fillText(fmt(max), 4, 14);
    ctx.fillText(fmt(0), 4, h - 22);
  }
  function maxVisible(series) {
    var r = visibleBuckets(), m = 0;
    series.forEach(function (ys) {
      for (var b = r[0]; b <= r[1]; b++) if (ys[b] !== null && ys[b] > m) m = ys[b];
    });
    return m;
  }
  function perSecond(ys) { return ys.map(function (v) { return v * 1e6 / W; }); }

  var fNames = Object.keys(B.latency);
  if (fNames.length) {
    var lat = chart('latency', 'Latency of ok operations by invocation time: p50 (solid), p95 (dashed), p99 (dotted), log scale', 190,
      function (ctx, w, h) {
        var X = xOf(w), maxV = 1;
        fNames.forEach(function (f) { maxV = Math.max(maxV, maxVisible([B.latency[f][2]])); });
        var lmax = Math.log10(maxV * 1.2), lmin = Math.max(0, lmax - 5);
        var y = function (v) { var lv = Math.log10(Math.max(v, 1)); return 8 + (1 - (lv - lmin) / (lmax - lmin || 1)) * (h - 30); };
        ctx.fillStyle = '#555';
        ctx.font = '10px sans-serif';
        for (var p = Math.ceil(lmin); p <= lmax; p++) ctx.fillText(fmtLatency(Math.pow(10, p)), 4, y(Math.pow(10, p)) + 3);
        fNames.forEach(function (f, j) {
          var col = SERIES[j % SERIES.length];
          line(ctx, X, B.latency[f][0], y, col);
          line(ctx, X, B.latency[f][1], y, col, [5, 3]);
          line(ctx, X, B.latency[f][2], y, col, [1, 3]);
        });
      });
    legend(lat, fNames.map(function (f, j) { return [f, SERIES[j % SERIES.length]]; }));
  }

  var okS = perSecond(B.ok), failS = perSecond(B.fail), infoS = perSecond(B.info);
  var thr = chart('throughput', 'Throughput: completions per second', 150, function (ctx, w, h) {
    var X = xOf(w), max = maxVisible([okS, failS]) * 1.1;
    var y = yLinear(h, max);
    yLabels(ctx, h, max, function (v) { return v.toFixed(0) + '/s'; });
    line(ctx, X, okS, y, KIND_COLOR[0]);
    line(ctx, X, failS, y, KIND_COLOR[1]);
  });
  legend(thr, [['ok', KIND_COLOR[0]], ['fail', KIND_COLOR[1]]]);
  var inf = chart('info', 'Info rate: operations left in doubt per second', 110, function (ctx, w, h) {
    var X = xOf(w), max = Math.max(1, maxVisible([infoS]) * 1.1);
    var y = yLinear(h, max);
    yLabels(ctx, h, max, function (v) { return v.toFixed(v < 10 ? 1 : 0) + '/s'; });
    line(ctx, X, infoS, y, KIND_COLOR[2]);
  });
  legend(inf, [['info', KIND_COLOR[2]]]);

  if (D.balances) {
    var bal = D.balances;
    var total = chart('total', 'Bank total seen by reads (min and max per interval)' +
      (bal.expected_total !== null && bal.expected_total !== undefined ? '; expected ' + bal.expected_total : ''), 130,
      function (ctx, w, h) {
        var X = xOf(w);
        var vals = bal.total_max.filter(function (v) { return v !== null; }).concat(bal.total_min.filter(function (v) { return v !== null; }));
        if (bal.expected_total !== null && bal.expected_total !== undefined) vals.push(bal.expected_total);
        var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
        if (hi === lo) { hi += 1; lo -= 1; }
        var y = function (v) { return 8 + (1 - (v - lo) / (hi - lo)) * (h - 30); };
        ctx.fillStyle = '#555';
        ctx.font = '10px sans-serif';
        ctx.fillText(String(hi), 4, 14);
        ctx.fillText(String(lo), 4, h - 22);
        if (bal.expected_total !== null && bal.expected_total !== undefined) {
          ctx.strokeStyle = '#aaa';
          ctx.setLineDash([4, 4]);
          ctx.beginPath(); ctx.moveTo(LEFT, y(bal.expected_total)); ctx.lineTo(w - RIGHT, y(bal.expected_total)); ctx.stroke();
          ctx.setLineDash([]);
        }
        line(ctx, X, bal.total_min, y, '#222');
        line(ctx, X, bal.total_max, y, '#d64541');
      });
    legend(total, [['lowest total read', '#222'], ['highest total read', '#d64541'], ['expected', '#aaa']]);
    var accounts = chart('balances', 'Every account\'s balance, from reads', 170, function (ctx, w, h) {
      var X = xOf(w), hi = 1;
      bal.accounts.forEach(function (col) { col.forEach(function (v) { if (v > hi) hi = v; }); });
      var y = yLinear(h, hi * 1.05);
      yLabels(ctx, h, hi, String);
      bal.accounts.forEach(function (col, a) {
        ctx.strokeStyle = SERIES[a % SERIES.length];
        ctx.beginPath();
        var on = false;
        for (var j = 0; j < bal.t.length; j++) {
          var xx = X.x(bal.t[j]);
          if (xx < LEFT - 50 || xx > w + 50) { on = false; continue; }
          if (!on) { ctx.moveTo(xx, y(col[j])); on = true; } else ctx.lineTo(xx, y(col[j]));
        }
        ctx.stroke();
      });
    });
    legend(accounts, bal.accounts.slice(0, 16).map(function (_, a) { return ['account ' + a, SERIES[a % SERIES.length]]; }));
  }

  if (D.nodes.length) {
    var rowH = 18;
    var nodes = chart('nodes', 'Node availability: killed · paused · cut off from the majority · slowed', D.nodes.length * rowH + 30,
      function (ctx, w) {
        var X = xOf(w);
        ctx.font = '11px sans-serif';
        D.nodes.forEach(function (node, r) {
          var y = 4 + r * rowH;
          ctx.fillStyle = '#444';
          ctx.fillText(node.name, 4, y + 12);
          ctx.fillStyle = '#e8f3ea';
          ctx.fillRect(LEFT, y, w - LEFT - RIGHT, rowH - 4);
          node.down.forEach(function (dn) {
            if (dn[1] < view.t0 || dn[0] > view.t1) return;
            var x0 = Math.max(LEFT, X.x(dn[0])), x1 = Math.min(w - RIGHT, X.x(dn[1]));
            ctx.fillStyle = NODE_COLOR[dn[2]] || '#888';
            ctx.fillRect(x0, y, Math.max(1, x1 - x0), rowH - 4);
          });
        });
      });
    legend(nodes, Object.keys(NODE_COLOR).map(function (k) { return [k, NODE_COLOR[k]]; }));
  }

  // ---- links from the anomaly sections to the timeline ----
  function opOfEvent(e) {
    var lo = 0, hi = n - 1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (ev[mid] === e) return mid;
      if (ev[mid] < e) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }
  function focusEvent(e, anomaly) {
    var o = opOfEvent(e);
    highlight = anomaly && D.anomaly_ops[anomaly] ? D.anomaly_ops[anomaly] : (o >= 0 ? [o] : null);
    // Zoom onto the operation clicked, with the rest of the anomaly's operations outlined.
    var ops = o >= 0 ? [o] : (highlight || []);
    if (!ops.length) { redraw(); return false; }
    var lo = Infinity, hi = -Infinity;
    ops.forEach(function (k) { lo = Math.min(lo, start[k]); hi = Math.max(hi, end[k]); });
    var pad = Math.max((hi - lo) * 0.5, D.span_us / 2000, 50);
    setView(lo - pad, hi + pad);
    document.getElementById('charts').scrollIntoView();
    return true;
  }
  document.addEventListener('click', function (e) {
    var a = e.target.closest ? e.target.closest('a.op-link') : null;
    if (!a) return;
    e.preventDefault();
    focusEvent(Number(a.getAttribute('data-event')), a.getAttribute('data-anomaly'));
  });
  document.getElementById('zoom-in').addEventListener('click', function () { zoom(0.5); });
  document.getElementById('zoom-out').addEventListener('click', function () { zoom(2); });
  document.getElementById('zoom-reset').addEventListener('click', function () { highlight = null; setView(0, D.span_us); });
  window.addEventListener('resize', redraw);

  api.view = function () { return { t0: view.t0, t1: view.t1, span: D.span_us }; };
  api.zoom = function (f, c) { zoom(f, c); drawNow(); return api.view(); };
  api.pan = function (f) { pan(f); drawNow(); return api.view(); };
  api.reset = function () { setView(0, D.span_us); drawNow(); return api.view(); };
  api.focusEvent = function (e, a) { var r = focusEvent(e, a); drawNow(); return r; };
  api.ops = n;
  api.bands = D.bands.length;
  drawNow();
  document.getElementById('range').textContent = fmtTime(view.t0) + ' – ' + fmtTime(view.t1);
  api.readyMs = performance.now();
  api.ready = true;
})();
