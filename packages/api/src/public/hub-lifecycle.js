// The hub's lifecycle parts (issue 21): a banner per base model and alias whose training close or
// shutdown is near or past (GET /v1/lifecycle/notices, judged on the API's clock), and the alias pages:
// the license's aliases with the model each serves, one alias's history (who, when, from, to) and its
// rollback (POST /v1/aliases/{name}/rollback). Loaded after hub.js; uses its `api`, `el`, `row`,
// `fillTable` and `fmtDate`. Loads on sign-in and on Refresh.

const TITLES = {
  training_closes: { soon: 'Training closes soon', past: 'Training closed' },
  shutdown: { soon: 'Shutdown soon', past: 'Shut down' },
};

function noticeTitle(n) {
  // The most serious of the notice's events names the banner.
  const worst = n.events.find((e) => e.event === 'shutdown') || n.events[0];
  const what = n.kind === 'alias' ? `alias ${n.name}` : `${n.name} at ${n.provider}`;
  return `${TITLES[worst.event][worst.state]}: ${what}`;
}

async function loadLifecycleNotices() {
  const box = document.querySelector('#lifecycle-notices');
  const { notices } = await api('/v1/lifecycle/notices');
  box.textContent = '';
  box.hidden = notices.length === 0;
  for (const n of notices) {
    const past = n.events.some((e) => e.state === 'past');
    box.append(
      el(
        'div',
        {
          class: `banner ${past ? 'past' : 'soon'}`,
          role: past ? 'alert' : 'status',
          'data-kind': n.kind,
          'data-name': n.name,
          'data-provider': n.provider,
        },
        el('strong', {}, noticeTitle(n)),
        n.message,
      ),
    );
  }
}

let openAlias = null;

async function loadAliases() {
  const { aliases } = await api('/v1/aliases');
  const rows = aliases.map((a) => {
    const button = el(
      'button',
      { type: 'button', class: 'secondary', 'aria-label': `History of alias ${a.name}` },
      'History',
    );
    button.addEventListener('click', () => showAlias(a.name));
    const tr = row([
      el('code', {}, a.name),
      el('code', {}, a.model || a.fineTuneId),
      a.baseModel,
      a.lifecycle.provider || '—',
      a.lifecycle.shutdownAt || '—',
      a.lifecycle.successor || '—',
      fmtDate(a.updatedAt),
      el('td', {}, button),
    ]);
    tr.setAttribute('data-alias', a.name);
    return tr;
  });
  fillTable('#aliases', rows, 'No aliases yet (POST /v1/aliases/{name}).');
  if (openAlias && aliases.some((a) => a.name === openAlias)) await showAlias(openAlias);
}

async function showAlias(name) {
  const a = await api(`/v1/aliases/${encodeURIComponent(name)}`);
  openAlias = name;
  document.querySelector('#alias-detail').hidden = false;
  document.querySelector('#alias-detail-title').textContent =
    `Alias ${a.name}: serves ${a.model || a.fineTuneId}`;
  const history = a.history.map((h) =>
    row([
      fmtDate(h.at),
      h.action === 'rollback' ? 'rolled back' : 'pointed',
      h.actor,
      h.fromFineTuneId ? el('code', {}, h.fromModel || h.fromFineTuneId) : '(created)',
      el('code', {}, h.toModel || h.toFineTuneId),
    ]),
  );
  fillTable('#alias-history', history, 'No changes recorded.');
  // Rollback goes back to where the last change came from (the API refuses when that is not possible).
  const last = a.history[0];
  const button = document.querySelector('#alias-rollback');
  const back = last?.fromFineTuneId ? last.fromModel || last.fromFineTuneId : null;
  button.disabled = !back;
  button.textContent = back ? `Roll back ${a.name} to ${back}` : `Nothing to roll back for ${a.name}`;
}

async function rollbackAlias() {
  if (!openAlias) return;
  const button = document.querySelector('#alias-rollback');
  const status = document.querySelector('#alias-status');
  button.disabled = true;
  try {
    const result = await api(`/v1/aliases/${encodeURIComponent(openAlias)}/rollback`, { method: 'POST' });
    status.textContent = `${openAlias} rolled back: it serves ${result.alias.model || result.alias.fineTuneId}.`;
  } catch (err) {
    status.textContent = `Could not roll back ${openAlias}: ${err.message}`;
  }
  await loadLifecycle();
}

async function loadLifecycle() {
  try {
    await Promise.all([loadLifecycleNotices(), loadAliases()]);
  } catch (err) {
    document.querySelector('#alias-status').textContent = `Could not load aliases: ${err.message}`;
  }
}

document.querySelector('#alias-rollback').addEventListener('click', rollbackAlias);
document.querySelector('#refresh').addEventListener('click', loadLifecycle);
document.addEventListener('tuneline:signed-in', async () => {
  await loadLifecycle();
  // A link (PUBLIC_URL/hub/#alias=<name>) opens that alias's page.
  const linked = /^#alias=([a-z0-9][a-z0-9_-]{0,63})$/.exec(location.hash);
  if (linked) await showAlias(linked[1]).catch(() => {});
});
