// The Tuneline hub: plain JS against the license API. The key stays in sessionStorage (this tab only).

const KEY = 'tuneline.licenseKey';
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children)
    node.append(
      c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? '' : String(c)),
    );
  return node;
}

async function api(path, opts = {}) {
  const res = await fetch(path, {
    ...opts,
    headers: {
      authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}`,
      ...(opts.body ? { 'content-type': 'application/json' } : {}),
    },
  });
  const isJson = (res.headers.get('content-type') || '').includes('json');
  const body = isJson ? await res.json() : await res.text();
  if (!res.ok) {
    const err = new Error(isJson && body.error ? body.error.message : `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

const fmtInt = (v) => (v === null || v === undefined || v === '' ? '—' : BigInt(v).toLocaleString('en-US'));
const fmtDate = (v) => (v ? new Date(v).toISOString().replace('T', ' ').slice(0, 16) : '—');
const status = (text) => {
  $('#status').textContent = text;
};

function row(cells) {
  return el('tr', {}, ...cells.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : el('td', {}, c))));
}

/** Fills the body of `table` (a selector) with `rows`, or with one cell across its columns saying `empty`. */
function fillTable(table, rows, empty) {
  const body = $(`${table} tbody`);
  body.textContent = '';
  const columns = $(`${table} thead tr`).children.length;
  if (!rows.length) body.append(el('tr', {}, el('td', { colspan: columns }, empty)));
  body.append(...rows);
}
const num = (v) => el('td', { class: 'num' }, fmtInt(v));

async function loadBalance() {
  const b = await api('/v1/credits');
  const box = $('#balance');
  box.textContent = '';
  for (const [label, value] of [
    ['Balance', b.posted],
    ['Held by reservations', b.pending],
    ['Available', b.available],
  ]) {
    box.append(
      el(
        'div',
        {},
        el('dt', {}, label),
        el('dd', { 'data-testid': `balance-${label.split(' ')[0].toLowerCase()}` }, fmtInt(value)),
      ),
    );
  }
}

// The datasets, fine-tunes and dead-letter lists: hub-lists.js (window.hubLists), paged and filtered.

async function toggle(f, button) {
  button.disabled = true;
  const on = f.active || f.activation === 'deploying';
  try {
    const after = await api(`/v1/fine-tunes/${f.id}/${on ? 'deactivate' : 'activate'}`, { method: 'POST' });
    const done = {
      deploying: 'is being deployed (active once it serves)',
      deactivating: 'is being undeployed',
    };
    status(`${f.model} ${done[after.activation] || (on ? 'deactivated' : 'activated')}.`);
    await window.hubLists.loadFineTunes();
  } catch (err) {
    status(`Could not change ${f.model}: ${err.message}`);
    button.disabled = false;
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * A 480×180 chart with 36 px margins: its svg (an image named `label`) with the x axis drawn, and `add`,
 * which appends an element of `attrs` (and text) to it and returns it.
 */
function chartCanvas(label) {
  const W = 480,
    H = 180,
    P = 36;
  const svg = document.createElementNS(SVG_NS, 'svg');
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', String(W));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  add('line', { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: '#9aa5b5' });
  return { W, H, P, svg, add };
}

function lossChart(checkpoints) {
  const points = checkpoints
    .map((c) => ({
      step: c.step,
      loss: Number(c.metrics.train_loss ?? c.metrics.full_valid_loss ?? c.metrics.valid_loss),
    }))
    .filter((p) => Number.isFinite(p.loss));
  const box = $('#loss-chart');
  box.textContent = '';
  if (points.length === 0) {
    box.append(el('p', {}, 'No checkpoints yet.'));
    return;
  }
  const { W, H, P, svg, add } = chartCanvas(
    `Training loss over ${points.length} checkpoints, from ${points[0].loss.toFixed(3)} to ${points[points.length - 1].loss.toFixed(3)}`,
  );
  const maxStep = Math.max(...points.map((p) => p.step), 1),
    minStep = Math.min(...points.map((p) => p.step));
  const maxLoss = Math.max(...points.map((p) => p.loss)),
    minLoss = Math.min(0, ...points.map((p) => p.loss));
  const x = (s) => P + ((s - minStep) / Math.max(1, maxStep - minStep)) * (W - 2 * P);
  const y = (l) => H - P + ((minLoss - l) / Math.max(1e-9, maxLoss - minLoss)) * (H - 2 * P);
  add('line', { x1: P, y1: P, x2: P, y2: H - P, stroke: '#9aa5b5' });
  add('text', { x: P, y: H - 8 }, `step ${minStep}`);
  add('text', { x: W - P - 50, y: H - 8 }, `step ${maxStep}`);
  add('text', { x: 2, y: P }, maxLoss.toFixed(2));
  add('text', { x: 2, y: H - P }, minLoss.toFixed(2));
  add('polyline', {
    fill: 'none',
    stroke: '#2457c5',
    'stroke-width': 2,
    points: points.map((p) => `${x(p.step)},${y(p.loss)}`).join(' '),
  });
  for (const p of points) add('circle', { cx: x(p.step), cy: y(p.loss), r: 3, fill: '#2457c5' });
  box.append(svg);
}

async function showDetail(id) {
  const f = await api(`/v1/fine-tunes/${id}`);
  $('#detail').hidden = false;
  $('#detail-title').textContent = `${f.model || f.suffix} — ${f.status}`;
  lossChart(f.checkpoints);
  if (window.showEvaluation) window.showEvaluation(id); // hub-evaluation.js
  const list = $('#events');
  list.textContent = '';
  if (!f.events.length) list.append(el('li', {}, 'No events yet.'));
  for (const e of f.events) list.append(el('li', {}, `${fmtDate(e.createdAt)} [${e.level}] ${e.message}`));
}

// What hub-lists.js calls from its rows.
window.hubActions = { toggle, showDetail };

async function loadUsage() {
  const { data } = await api('/v1/credits/usage');
  const rows = data.map((u) => {
    const sign = u.kind === 'grant' || u.kind === 'release' ? '+' : '−';
    return row([
      fmtDate(u.at),
      u.kind,
      u.model || '—',
      num(u.tokens),
      el('td', { class: 'num' }, `${sign}${fmtInt(u.amount)}`),
      num(u.posted),
      num(u.available),
      u.memo || '',
    ]);
  });
  fillTable('#usage', rows, 'No credit movements yet.');
}

const MODEL_COLOURS = ['#2457c5', '#c0392b', '#1e8449', '#b9770e', '#7d3c98', '#117a8b'];

/** Stacked bars of credits per day, one colour per model, with a legend. */
function modelUsageChart(usage) {
  const box = $('#model-usage-chart');
  box.textContent = '';
  if (!usage.days.length) {
    box.append(el('p', {}, 'No inference in this period.'));
    return;
  }
  const days = [];
  for (let d = new Date(usage.from); d <= new Date(usage.to); d = new Date(d.getTime() + 86_400_000))
    days.push(d.toISOString().slice(0, 10));
  const colour = new Map(usage.models.map((m, i) => [m.fineTuneId, MODEL_COLOURS[i % MODEL_COLOURS.length]]));
  const perDay = new Map(days.map((d) => [d, 0]));
  for (const r of usage.days) perDay.set(r.day, (perDay.get(r.day) || 0) + Number(r.credits));
  const max = Math.max(1, ...perDay.values());
  const total = usage.models.reduce((sum, m) => sum + Number(m.credits), 0);
  const { W, H, P, svg, add } = chartCanvas(
    `Inference credits per day from ${usage.from} to ${usage.to}: ${total.toLocaleString('en-US')} credits over ${usage.models.length} model(s)`,
  );
  const slot = (W - 2 * P) / days.length;
  add('text', { x: 2, y: P }, max.toLocaleString('en-US'));
  add('text', { x: 2, y: H - P }, '0');
  add('text', { x: P, y: H - 8 }, usage.from);
  add('text', { x: W - P - 70, y: H - 8 }, usage.to);
  const stacked = new Map(days.map((d) => [d, 0]));
  for (const r of usage.days) {
    const i = days.indexOf(r.day);
    if (i < 0) continue;
    const h = (Number(r.credits) / max) * (H - 2 * P);
    const below = stacked.get(r.day);
    stacked.set(r.day, below + h);
    const bar = add('rect', {
      x: P + i * slot + slot * 0.15,
      y: H - P - below - h,
      width: Math.max(1, slot * 0.7),
      height: Math.max(0.5, h),
      fill: colour.get(r.fineTuneId),
      'data-model': r.model,
    });
    const title = document.createElementNS(SVG_NS, 'title');
    title.textContent = `${r.day} ${r.model}: ${fmtInt(r.credits)} credits, ${r.calls} calls`;
    bar.append(title);
  }
  box.append(svg);
  const legend = el('ul', { class: 'legend' });
  for (const m of usage.models)
    legend.append(
      el(
        'li',
        {},
        el('span', { class: 'swatch', 'data-colour': colour.get(m.fineTuneId) }),
        el('code', {}, m.model),
        ` ${fmtInt(m.calls)} calls, ${fmtInt(BigInt(m.promptTokens) + BigInt(m.completionTokens))} tokens, ${fmtInt(m.credits)} credits`,
      ),
    );
  // Colours come from the palette above; set as properties (the CSP forbids inline style attributes).
  for (const s of legend.querySelectorAll('.swatch')) s.style.background = s.dataset.colour;
  box.append(legend);
}

async function loadModelUsage() {
  const usage = await api('/v1/credits/usage/models?days=30');
  modelUsageChart(usage);
  const rows = [...usage.days]
    .reverse()
    .map((r) =>
      row([
        r.day,
        el('code', {}, r.model),
        num(r.calls),
        num(r.promptTokens),
        num(r.completionTokens),
        num(r.credits),
      ]),
    );
  fillTable('#model-usage', rows, 'No inference yet.');
}

async function downloadCsv(event) {
  event.preventDefault();
  const csv = await api('/v1/credits/usage?format=csv');
  const link = el('a', {
    href: URL.createObjectURL(new Blob([csv], { type: 'text/csv' })),
    download: 'tuneline-usage.csv',
  });
  link.click();
}

async function estimate(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const q = new URLSearchParams({ model: form.get('model'), tokens: form.get('tokens') });
  if (form.get('epochs')) q.set('epochs', form.get('epochs'));
  try {
    const e = await api(`/v1/pricing/estimate?${q}`);
    $('#estimate-result').textContent =
      `${fmtInt(e.billedTokens)} billed tokens (${e.epochs} epochs) ≈ ${fmtInt(e.credits)} credits${e.tokenCount === 'estimate' ? ' (estimate: approximate tokenizer)' : ''} at ${e.provider}: ${fmtInt(e.creditsPerMillionTrainingTokens)} credits per 1M training tokens. Inference: ${fmtInt(e.inference.inputCreditsPerMillion)} / ${fmtInt(e.inference.outputCreditsPerMillion)} credits per 1M input / output tokens.`;
  } catch (err) {
    $('#estimate-result').textContent = `Cannot estimate: ${err.message}`;
  }
}

async function refresh() {
  status('Loading…');
  const lists = window.hubLists;
  await Promise.all([
    loadBalance(),
    lists.loadDatasets(),
    lists.loadFineTunes(),
    lists.loadDeadLetters(),
    loadUsage(),
    loadModelUsage(),
  ]);
  status(`Updated ${new Date().toLocaleTimeString()}.`);
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    const license = await api('/v1/license');
    $('#who').textContent = `${license.name} (${license.id})`;
    $('#sign-in').hidden = true;
    $('#app').hidden = false;
    $('#sign-out').hidden = false;
    await refresh();
    document.dispatchEvent(new Event('tuneline:signed-in'));
  } catch (err) {
    sessionStorage.removeItem(KEY);
    $('#sign-in-error').textContent =
      err.status === 401 ? 'That key was not accepted.' : `Sign-in failed: ${err.message}`;
  }
}

$('#sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  $('#sign-in-error').textContent = '';
  signIn($('#license-key').value.trim());
});
$('#sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  location.reload();
});
$('#estimate-form').addEventListener('submit', estimate);
$('#refresh').addEventListener('click', () =>
  refresh().catch((err) => status(`Could not refresh: ${err.message}`)),
);
$('#usage-csv').addEventListener('click', downloadCsv);
// A link from an e-mail (PUBLIC_URL/hub/#fine-tune=<id>) opens that fine-tune once signed in.
const linked = /^#fine-tune=([0-9a-f-]{36})$/.exec(location.hash);
if (linked) document.addEventListener('tuneline:signed-in', () => showDetail(linked[1]), { once: true });
if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
