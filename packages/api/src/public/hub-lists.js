// The hub's lists: datasets and fine-tunes paged by cursor and filtered (status, base model, creation
// dates, request id), with each dataset's errors and warnings, each fine-tune's base model,
// hyperparameters and a cancel button; and the license's dead letters. Loaded before hub.js, whose
// helpers (api, el, num, fillTable, fmtInt, fmtDate, status; window.hubActions) these functions call when
// they run.

const PAGE_SIZE = 25;

/** The filters of a form as API parameters; "Created through" is a whole day, so the API gets the next. */
function filtersOf(form) {
  const params = new URLSearchParams();
  for (const name of ['status', 'baseModel', 'requestId', 'createdFrom']) {
    const value = (form.elements[name]?.value || '').trim();
    if (value) params.set(name, value);
  }
  const through = form.elements.createdTo?.value;
  if (through) {
    const next = new Date(`${through}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    params.set('createdTo', next.toISOString().slice(0, 10));
  }
  return params;
}

/**
 * A list's filter form and pager, from the hub's templates: the form keeps its own status choices (the
 * template's slot) and gets the controls every list shares, each labelled by its id `<name>-<parameter>`.
 */
function listControls(name, form, pager) {
  const filters = document.getElementById('list-filter').content.cloneNode(true);
  for (const label of filters.querySelectorAll('label')) {
    const control = filters.getElementById(label.htmlFor);
    control.id = `${name}-${control.name}`;
    label.htmlFor = control.id;
  }
  const slot = filters.querySelector('[data-slot]');
  const status = form.querySelector('select[name="status"]');
  status.id = slot.id;
  slot.replaceWith(status);
  form.replaceChildren(filters);
  pager.replaceChildren(document.getElementById('list-pager').content.cloneNode(true));
}

/**
 * One paged list: its filter form, the cursors of the pages seen (for "Previous page"), its pager, and
 * its table (`#<name>`), a row per item by `rowOf(item)`.
 */
function pagedList(name, path, rowOf) {
  const form = document.getElementById(`${name}-filter`);
  const pager = document.getElementById(`${name}-pager`);
  listControls(name, form, pager);
  const error = document.createElement('p');
  error.className = 'error';
  error.setAttribute('role', 'alert');
  form.after(error);
  const state = { filters: new URLSearchParams(), cursors: [null], page: 0, next: null };
  const button = (which) => pager.querySelector(`[data-page="${which}"]`);

  async function load() {
    const query = new URLSearchParams(state.filters);
    query.set('limit', String(PAGE_SIZE));
    const cursor = state.cursors[state.page];
    if (cursor) query.set('cursor', cursor);
    let body;
    try {
      body = await api(`${path}?${query}`);
    } catch (err) {
      error.textContent = `Cannot list ${name.replace('-', ' ')}: ${err.message}`;
      throw err;
    }
    error.textContent = '';
    state.next = body.nextCursor;
    const filtered = [...state.filters.keys()].length > 0;
    fillTable(`#${name}`, body.data.map(rowOf), filtered ? `No ${name} match.` : `No ${name} yet.`);
    button('first').disabled = state.page === 0;
    button('previous').disabled = state.page === 0;
    button('next').disabled = !state.next;
    pager.querySelector('[data-page="label"]').textContent =
      `Page ${state.page + 1}${state.next ? '' : ' (last)'}`;
  }

  const reload = () =>
    load().catch((err) => status(`Could not load ${name.replace('-', ' ')}: ${err.message}`));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    state.filters = filtersOf(form);
    state.cursors = [null];
    state.page = 0;
    reload();
  });
  form.addEventListener('reset', () => {
    state.filters = new URLSearchParams();
    state.cursors = [null];
    state.page = 0;
    // After the browser cleared the fields.
    setTimeout(reload, 0);
  });
  button('first').addEventListener('click', () => {
    state.page = 0;
    reload();
  });
  button('previous').addEventListener('click', () => {
    state.page = Math.max(0, state.page - 1);
    reload();
  });
  button('next').addEventListener('click', () => {
    if (!state.next) return;
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    reload();
  });
  return load;
}

/** One line for people, as the API's own rejection reasons read: where, then what. */
function describeIssue(issue) {
  if (typeof issue === 'string') return issue;
  const where = [
    issue.documentId !== undefined
      ? `document "${issue.documentId}"`
      : issue.index !== undefined
        ? `document #${issue.index + 1}`
        : '',
    issue.field ? `field "${issue.field}"` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const text = issue.message || issue.code || JSON.stringify(issue);
  return where ? `${where}: ${text}` : text;
}

function issuesCell(issues, kind) {
  if (!issues?.length) return el('td', {}, '—');
  return el(
    'td',
    { 'data-testid': kind },
    el(
      'ul',
      { class: `issues ${kind === 'errors' ? 'error' : ''}` },
      ...issues.map((i) => el('li', {}, describeIssue(i))),
    ),
  );
}

/** A status, with a badge and the reason when the row is dead-lettered. */
function statusCell(value, deadLetter, extra) {
  return el(
    'td',
    {},
    el('span', { class: `status-${value}` }, value),
    deadLetter
      ? el(
          'span',
          { class: 'badge-dead', title: deadLetter.reason || '', 'data-testid': 'dead-letter' },
          'dead-lettered',
        )
      : '',
    deadLetter?.reason ? el('div', { class: 'error' }, `Stuck: ${deadLetter.reason}`) : '',
    extra || '',
  );
}

function datasetRow(d) {
  return el(
    'tr',
    { 'data-dataset': d.id },
    el('td', {}, fmtDate(d.createdAt)),
    el('td', {}, el('code', {}, d.shortHash || d.id.slice(0, 8))),
    el('td', {}, d.baseModel),
    statusCell(d.status, d.deadLetter),
    el('td', { class: 'num' }, `${d.trainExamples} / ${d.testExamples}`),
    el('td', { class: 'num' }, `${fmtInt(d.trainTokens)} / ${fmtInt(d.testTokens)}`),
    el('td', { class: 'num' }, d.epochs ?? '—'),
    num(d.estimatedBilledTokens),
    num(d.estimatedCredits),
    window.evaluationEstimateCell ? window.evaluationEstimateCell(d) : '—', // hub-evaluation.js
    el('td', {}, [d.trainFileId, d.testFileId].filter(Boolean).join(', ') || '—'),
    issuesCell(d.errors, 'errors'),
    issuesCell(d.warnings, 'warnings'),
  );
}

/** `n_epochs 3 · batch_size 4 · learning_rate_multiplier 0.5`, or the provider's defaults. */
function hyperparametersText(h) {
  if (!h || h === 'auto') return 'provider defaults (auto)';
  const parts = Object.entries(h).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(' · ') : 'provider defaults (auto)';
}

function fineTuneRow(f) {
  const name = f.model || f.description || f.suffix;
  const actions = el('td', {});
  const details = el(
    'button',
    { type: 'button', class: 'secondary', 'aria-label': `Show events and loss of ${f.model || f.id}` },
    'Details',
  );
  details.addEventListener('click', () => window.hubActions.showDetail(f.id));
  actions.append(details, ' ');
  if (f.cancellable) {
    const cancel = el(
      'button',
      { type: 'button', class: 'secondary', 'aria-label': `Cancel ${name}` },
      'Cancel',
    );
    cancel.addEventListener('click', () => cancelFineTune(f, name, cancel));
    actions.append(cancel, ' ');
  }
  if (f.available) {
    // A deployment under way (Azure) is withdrawn with Deactivate; one being deleted waits.
    const verb = f.active || f.activation === 'deploying' ? 'Deactivate' : 'Activate';
    const button = el('button', { type: 'button', 'aria-label': `${verb} ${f.model}` }, verb);
    if (f.activation === 'deactivating') button.disabled = true;
    button.addEventListener('click', () => window.hubActions.toggle(f, button));
    actions.append(button);
  }
  return el(
    'tr',
    { 'data-fine-tune': f.id },
    el('td', {}, fmtDate(f.createdAt)),
    el('td', {}, f.description || el('em', {}, f.suffix)),
    statusCell(
      f.status,
      f.deadLetter,
      el(
        'div',
        {},
        f.errorMessage ? el('div', { class: 'error' }, f.errorMessage) : '',
        f.cancelRequested && !f.finishedAt
          ? el('div', { 'data-testid': 'cancel-requested' }, 'cancel requested')
          : '',
      ),
    ),
    el('td', { 'data-testid': 'base-model' }, f.baseModel),
    el('td', { 'data-testid': 'hyperparameters' }, hyperparametersText(f.hyperparameters)),
    el('td', {}, f.model ? el('code', {}, f.model) : '—'),
    num(f.trainedTokens),
    num(f.creditsReserved),
    num(f.creditsCharged),
    el('td', {}, fmtDate(f.finishedAt)),
    activationCell(f),
    actions,
  );
}

/**
 * Whether the model serves: active, inactive, or on the way (an Azure model is deployed first:
 * deploying → active, deactivating → inactive), with why its last deployment ended and the hosting fee
 * a deployment costs.
 */
function activationCell(f) {
  const label = { deploying: 'deploying…', deactivating: 'deactivating…' }[f.activation] || f.activation;
  const ended = f.deployment && ['failed', 'deleted'].includes(f.deployment.state) && !f.active;
  return el(
    'td',
    { class: f.active ? 'yes' : '', 'data-testid': 'active' },
    f.available || f.active ? label : '—',
    ended && f.deployment.reason
      ? el('div', { class: 'error', 'data-testid': 'deployment-reason' }, f.deployment.reason)
      : '',
    f.hostingCreditsPerHour && f.available
      ? el(
          'div',
          { 'data-testid': 'hosting-fee' },
          `hosting ${fmtInt(f.hostingCreditsPerHour)} credits/hour while deployed`,
        )
      : '',
  );
}

async function cancelFineTune(f, name, button) {
  button.disabled = true;
  try {
    await api(`/v1/fine-tunes/${f.id}/cancel`, { method: 'POST' });
    status(`Cancellation of ${name} requested.`);
    await window.hubLists.loadFineTunes();
  } catch (err) {
    status(`Could not cancel ${name}: ${err.message}`);
    button.disabled = false;
  }
}

async function loadDeadLetters() {
  const { data } = await api('/v1/dead-letters');
  const kinds = {
    request: 'request',
    dataset: 'dataset',
    fine_tune: 'fine-tune',
    notification: 'notification',
  };
  const rows = data.map((d) =>
    el(
      'tr',
      { 'data-dead-letter': d.id },
      el('td', {}, fmtDate(d.deadLetteredAt)),
      el('td', {}, `${kinds[d.subject.kind] || d.subject.kind} `, el('code', {}, d.subject.id)),
      el('td', {}, d.queue),
      el('td', { class: 'error' }, d.reason || '—'),
      num(String(d.recoveries)),
    ),
  );
  fillTable('#dead-letters', rows, 'Nothing is stuck.');
}

// What hub.js calls (its refresh, its activate button).
window.hubLists = {
  loadDatasets: pagedList('datasets', '/v1/datasets', datasetRow),
  loadFineTunes: pagedList('fine-tunes', '/v1/fine-tunes', fineTuneRow),
  loadDeadLetters,
};
