// Renders /openapi.json: operations grouped by tag, their parameters, bodies and responses, then the schemas.

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function schemaLink(schema) {
  if (!schema) return '';
  if (schema.$ref) {
    const name = schema.$ref.split('/').pop();
    return el('a', { href: `#schema-${name}` }, name);
  }
  return el('code', {}, JSON.stringify(schema).slice(0, 200));
}

async function render() {
  const main = document.getElementById('docs');
  const doc = await (await fetch('/openapi.json')).json();
  main.textContent = '';
  main.append(el('p', {}, doc.info.description));
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ['other'])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ path, method, op });
    }
  }
  for (const [tag, ops] of byTag) {
    const section = el('section', { class: 'card' }, el('h2', {}, tag));
    for (const { path, method, op } of ops) {
      const details = el('details', { class: 'op' });
      const auth = op.security?.length ? Object.keys(op.security[0])[0] : 'none';
      details.append(
        el(
          'summary',
          {},
          el('span', { class: `method ${method}` }, method.toUpperCase()),
          ' ',
          el('code', {}, path),
          ' — ',
          op.summary,
          ' ',
          el('small', {}, `(auth: ${auth})`),
        ),
      );
      if (op.parameters) {
        const list = el('ul', {});
        for (const p of op.parameters)
          list.append(
            el(
              'li',
              {},
              el('code', {}, p.name),
              ` (${p.in}${p.required ? ', required' : ''}) `,
              schemaLink(p.schema),
            ),
          );
        details.append(el('h4', {}, 'Parameters'), list);
      }
      if (op.requestBody) {
        details.append(
          el('h4', {}, 'Body'),
          el('p', {}, schemaLink(op.requestBody.content['application/json'].schema)),
        );
      }
      const list = el('ul', {});
      for (const [status, r] of Object.entries(op.responses)) {
        const content = r.content ? Object.entries(r.content)[0] : undefined;
        list.append(
          el(
            'li',
            {},
            el('strong', {}, status),
            ` ${r.description} `,
            content ? schemaLink(content[1].schema) : '',
          ),
        );
      }
      details.append(el('h4', {}, 'Responses'), list);
      section.append(details);
    }
    main.append(section);
  }
  const schemas = el('section', { class: 'card' }, el('h2', {}, 'Schemas'));
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    schemas.append(el('h3', { id: `schema-${name}` }, name), el('pre', {}, JSON.stringify(schema, null, 2)));
  }
  main.append(schemas);
}

render().catch((err) => {
  document.getElementById('docs').textContent = `Could not load the document: ${err.message}`;
});
