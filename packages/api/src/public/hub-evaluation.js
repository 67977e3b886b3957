// The hub's evaluation panel (issue 18): per fine-tune, the per-field table of base, champion and
// fine-tuned accuracy with deltas, the verdicts, and a few failing examples with the expected and the
// answered values side by side. Loaded after hub.js; uses its `api` and `el`.

const pct = (p) => (p && p.rate !== null && p.rate !== undefined ? `${(p.rate * 100).toFixed(1)}%` : '—');
const interval = (p) =>
  p && p.rate !== null && p.rate !== undefined
    ? ` [${(p.low * 100).toFixed(1)}, ${(p.high * 100).toFixed(1)}]`
    : '';
const delta = (d) =>
  d === null || d === undefined ? '—' : `${d >= 0 ? '+' : '−'}${Math.abs(d * 100).toFixed(1)} pt`;
const show = (v) => (v === undefined ? '(missing)' : JSON.stringify(v));

function evaluationTableNode(table) {
  const head = ['Field', 'Base', ...(table.hasChampion ? ['Champion'] : []), 'Fine-tuned', 'Δ base'];
  if (table.hasChampion) head.push('Δ champion');
  const body = el('tbody', {});
  for (const r of table.rows) {
    const cells = [el('th', { scope: 'row' }, r.label), el('td', { class: 'num' }, pct(r.base))];
    if (table.hasChampion) cells.push(el('td', { class: 'num' }, pct(r.champion)));
    cells.push(
      el('td', { class: 'num' }, `${pct(r.fineTuned)}${interval(r.fineTuned)}`),
      el('td', { class: 'num' }, delta(r.deltaBase)),
    );
    if (table.hasChampion) cells.push(el('td', { class: 'num' }, delta(r.deltaChampion)));
    body.append(el('tr', { 'data-field': r.label }, ...cells));
  }
  return el(
    'table',
    { id: 'evaluation-table' },
    el('caption', { class: 'visually-hidden' }, 'Accuracy per field by model'),
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col' }, h)))),
    body,
  );
}

function failingNode(rows, fineTunedModel) {
  const failing = rows.filter((r) => r.role === 'fine_tuned' && r.correctFields < r.scoredFields).slice(0, 3);
  const list = el('div', { id: 'evaluation-failing' });
  if (!failing.length) {
    list.append(
      el('p', {}, `No failing example among the first ${rows.length} answers of ${fineTunedModel}.`),
    );
    return list;
  }
  for (const r of failing) {
    const body = el('tbody', {});
    for (const f of r.fields.filter((x) => x.outcome !== 'correct')) {
      body.append(
        el(
          'tr',
          {},
          el('th', { scope: 'row' }, f.field),
          el('td', {}, el('code', {}, show(f.expected))),
          el('td', {}, el('code', {}, show(f.answered))),
          el('td', {}, f.outcome),
        ),
      );
    }
    list.append(
      el('h5', {}, `Example ${r.exampleId}`),
      el(
        'table',
        { class: 'failing', 'data-example': r.exampleId },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...['Field', 'Expected', 'Answered', 'Outcome'].map((h) => el('th', { scope: 'col' }, h)),
          ),
        ),
        body,
      ),
    );
  }
  return list;
}

const DECISIONS = {
  promoted: 'Promoted',
  kept: 'Kept the champion',
  manual: 'Waiting for you (promotion is manual)',
};

/**
 * A training-profile version's decision (issue 22.4): promoted, kept or manual with the reason, whether
 * the alias serves it, and a button that promotes it by hand (one API call) when it is not served.
 */
function promotionNode(v, fineTuneId) {
  const box = el('div', { id: 'promotion', 'data-testid': 'promotion' });
  const p = v.promotion;
  box.append(
    el(
      'p',
      { 'data-testid': 'promotion-decision', 'data-decision': p ? p.decision : 'none' },
      `Training profile ${v.profile}, version ${v.version}: `,
      el('strong', {}, p ? DECISIONS[p.decision] || p.decision : 'Not decided yet'),
      p ? ` (${p.actor}, ${fmtDate(p.at)})` : '',
    ),
  );
  if (p) box.append(el('p', { 'data-testid': 'promotion-reason' }, p.reason));
  if (v.serving) {
    box.append(el('p', { 'data-testid': 'promotion-serving' }, `The alias ${v.alias} serves this model.`));
    return box;
  }
  const button = el(
    'button',
    { type: 'button', 'data-testid': 'promote' },
    v.alias ? `Promote: serve it as ${v.alias}` : 'Promote: activate it',
  );
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await api(v.promotePath, { method: 'POST' });
      status(`Version ${v.version} of ${v.profile} promoted.`);
      await showEvaluation(fineTuneId);
    } catch (err) {
      status(`Could not promote version ${v.version}: ${err.message}`);
      button.disabled = false;
    }
  });
  box.append(button);
  return box;
}

/** Fills #evaluation for one fine-tune. */
async function showEvaluation(id) {
  const box = document.querySelector('#evaluation');
  box.textContent = '';
  let e;
  try {
    e = await api(`/v1/fine-tunes/${id}/evaluation?limit=500`);
  } catch (err) {
    box.append(el('p', { class: 'error' }, `Could not load the evaluation: ${err.message}`));
    return;
  }
  if (e.status !== 'succeeded' || !e.table) {
    const why =
      e.status === 'none'
        ? `No evaluation: ${e.reason}.`
        : `Evaluation ${e.status}${e.reason ? `: ${e.reason}` : ''}.`;
    box.append(el('p', { 'data-testid': 'evaluation-status' }, why));
    if (e.profileVersion) box.append(promotionNode(e.profileVersion, id));
    return;
  }
  box.append(
    el(
      'p',
      { 'data-testid': 'evaluation-status' },
      `${e.examplesEvaluated} testing examples; ${e.charged.credits} credits charged for ${e.charged.tokens} tokens.`,
    ),
    evaluationTableNode(e.table),
    el(
      'ul',
      { id: 'evaluation-verdicts' },
      el('li', {}, `Against the base model (${e.models.base}): ${e.table.verdictBase}`),
      ...(e.table.hasChampion
        ? [el('li', {}, `Against the champion (${e.models.champion}): ${e.table.verdictChampion}`)]
        : []),
    ),
    ...(e.profileVersion ? [promotionNode(e.profileVersion, id)] : []),
    el('h4', {}, 'Failing examples'),
    failingNode(e.rows, e.models.fine_tuned),
  );
}

/** The datasets grid's evaluation cell: what evaluating the testing file will cost, or why there is none. */
function evaluationEstimateCell(d) {
  const e = d.evaluationEstimate;
  if (!e) return el('td', {}, '—');
  if (!e.evaluated) return el('td', { 'data-testid': 'evaluation-estimate' }, e.reason);
  return el(
    'td',
    { 'data-testid': 'evaluation-estimate' },
    `${e.examples} examples × ${e.models} models × ~${e.tokensPerCall} tokens ≈ ${BigInt(e.credits).toLocaleString('en-US')} credits (reserved with training)`,
  );
}

window.showEvaluation = showEvaluation;
window.evaluationEstimateCell = evaluationEstimateCell;
