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

async function loadDatasets() {
  const { data } = await api('/v1/datasets');
  const body = $('#datasets tbody');
  body.textContent = '';
  if (!data.length) body.append(el('tr', {}, el('td', { colspan: 11 }, 'No datasets yet.')));
  for (const d of data) {
    body.append(
      row([
        fmtDate(d.createdAt),
        el('code', {}, d.shortHash || d.id.slice(0, 8)),
        d.provider ? `${d.baseModel} (${d.provider})` : d.baseModel,
        el('span', { class: `status-${d.status}` }, d.status),
        el('td', { class: 'num' }, `${d.trainExamples} / ${d.testExamples}`),
        el(
          'td',
          {
            class: 'num',
            title:
              d.tokenCount === 'estimate' ? 'approximate tokenizer: billing uses the provider count' : '',
          },
          `${fmtInt(d.trainTokens)} / ${fmtInt(d.testTokens)}${d.tokenCount === 'estimate' ? ' (estimate)' : ''}`,
        ),
        el('td', { class: 'num' }, d.epochs ?? '—'),
        num(d.estimatedBilledTokens),
        num(d.estimatedCredits),
        [d.trainFileId, d.testFileId].filter(Boolean).join(', ') || '—',
        d.warnings.length
          ? d.warnings.map((w) => (typeof w === 'string' ? w : w.message || JSON.stringify(w))).join('; ')
          : '—',
      ]),
    );
  }
}

async function loadFineTunes() {
  const { data } = await api('/v1/fine-tunes');
  const body = $('#fine-tunes tbody');
  body.textContent = '';
  if (!data.length) body.append(el('tr', {}, el('td', { colspan: 10 }, 'No fine-tunes yet.')));
  for (const f of data) {
    const actions = el('td', {});
    const details = el(
      'button',
      { type: 'button', class: 'secondary', 'aria-label': `Show events and loss of ${f.model || f.id}` },
      'Details',
    );
    details.addEventListener('click', () => showDetail(f.id));
    actions.append(details, ' ');
    if (f.available) {
      const verb = f.active ? 'Deactivate' : 'Activate';
      const button = el('button', { type: 'button', 'aria-label': `${verb} ${f.model}` }, verb);
      button.addEventListener('click', () => toggle(f, button));
      actions.append(button);
    }
    body.append(
      el(
        'tr',
        { 'data-fine-tune': f.id },
        el('td', {}, fmtDate(f.createdAt)),
        el('td', {}, f.description || el('em', {}, f.suffix)),
        el(
          'td',
          {},
          el('span', { class: `status-${f.status}` }, f.status),
          f.errorMessage ? el('div', { class: 'error' }, f.errorMessage) : '',
        ),
        el('td', {}, f.model ? el('code', {}, f.model) : '—'),
        num(f.trainedTokens),
        num(f.creditsReserved),
        num(f.creditsCharged),
        el('td', {}, fmtDate(f.finishedAt)),
        el(
          'td',
          { class: f.active ? 'yes' : '', 'data-testid': 'active' },
          f.active ? 'active' : f.available ? 'inactive' : '—',
        ),
        actions,
      ),
    );
  }
}

async function toggle(f, button) {
  button.disabled = true;
  try {
    await api(`/v1/fine-tunes/${f.id}/${f.active ? 'deactivate' : 'activate'}`, { method: 'POST' });
    status(`${f.model} ${f.active ? 'deactivated' : 'activated'}.`);
    await loadFineTunes();
  } catch (err) {
    status(`Could not change ${f.model}: ${err.message}`);
    button.disabled = false;
  }
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
  const W = 480,
    H = 180,
    P = 36;
  const maxStep = Math.max(...points.map((p) => p.step), 1),
    minStep = Math.min(...points.map((p) => p.step));
  const maxLoss = Math.max(...points.map((p) => p.loss)),
    minLoss = Math.min(0, ...points.map((p) => p.loss));
  const x = (s) => P + ((s - minStep) / Math.max(1, maxStep - minStep)) * (W - 2 * P);
  const y = (l) => H - P + ((minLoss - l) / Math.max(1e-9, maxLoss - minLoss)) * (H - 2 * P);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    svg.append(n);
  };
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', String(W));
  svg.setAttribute('role', 'img');
  svg.setAttribute(
    'aria-label',
    `Training loss over ${points.length} checkpoints, from ${points[0].loss.toFixed(3)} to ${points[points.length - 1].loss.toFixed(3)}`,
  );
  add('line', { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: '#9aa5b5' });
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
  const list = $('#events');
  list.textContent = '';
  if (!f.events.length) list.append(el('li', {}, 'No events yet.'));
  for (const e of f.events) list.append(el('li', {}, `${fmtDate(e.createdAt)} [${e.level}] ${e.message}`));
}

async function loadUsage() {
  const { data } = await api('/v1/credits/usage');
  const body = $('#usage tbody');
  body.textContent = '';
  if (!data.length) body.append(el('tr', {}, el('td', { colspan: 8 }, 'No credit movements yet.')));
  for (const u of data) {
    const sign = u.kind === 'grant' || u.kind === 'release' ? '+' : '−';
    body.append(
      row([
        fmtDate(u.at),
        u.kind,
        u.model || '—',
        num(u.tokens),
        el('td', { class: 'num' }, `${sign}${fmtInt(u.amount)}`),
        num(u.posted),
        num(u.available),
        u.memo || '',
      ]),
    );
  }
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
  await Promise.all([loadBalance(), loadDatasets(), loadFineTunes(), loadUsage()]);
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
if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
