// Starts GraphiQL against this server's /graphql. The browser sends the session cookie
// (same origin); a bearer token can be set in GraphiQL's headers tab instead.
(function () {
  // Queries and mutations over HTTP; subscriptions over WebSocket (graphql-transport-ws, with
  // GraphiQL's bundled graphql-ws client). The headers tab's Authorization goes into
  // connection_init; without one, the cookie counts (bff's own origin is allowed).
  var url = new URL('/graphql', window.location.href).toString();
  var send = GraphiQL.createFetcher({ url: url, subscriptionUrl: url.replace(/^http/, 'ws') });
  // GraphiQL 3.8.3 updates `operationName` on a debounce: Execute right after an edit would
  // send the previous name ("Unknown operation named …"). The fetcher decides it again from
  // the text it sends: the only operation, or (several) the one under the editor's cursor.
  function fetcher(params, options) {
    var chosen = operationToRun(params.query, params.operationName);
    if (chosen !== params.operationName) {
      params = Object.assign({}, params, { operationName: chosen === null ? undefined : chosen });
    }
    return send(params, options);
  }
  var defaultQuery = [
    '# The signed-in viewer. Open the link `bff dev` prints,',
    '# or paste its Authorization header into Headers below.',
    'query Dashboard {',
    '  viewer {',
    '    id name email',
    '    subscription { plan status currentPeriodEnd entitlements { monthlyPhotoQuota pricePerPhoto } }',
    '    credits { balance freePhotosRemaining transactions(first: 5) { edges { node { kind amount description createdAt } } } }',
    '    usage { metric used limit remaining windowEnd }',
    '    photoJobs(first: 10) { totalCount pageInfo { hasNextPage endCursor } edges { node { id prompt status cost groupName createdAt } } }',
    '  }',
    '}',
    ''
  ].join('\n');
  // `bff dev` prints a link whose fragment (never sent to the server) holds the demo headers;
  // a fragment may also carry a query to open (`#query=…`, URI-encoded).
  var headers;
  var hash = window.location.hash;
  var match = /(?:^#|&)headers=([^&]*)/.exec(hash);
  if (match) {
    try { headers = JSON.stringify(JSON.parse(decodeURIComponent(match[1])), null, 2); } catch (e) {}
  }
  var query = /(?:^#|&)query=([^&]*)/.exec(hash);
  if (query) {
    try { defaultQuery = decodeURIComponent(query[1]); } catch (e) {}
  }
  if (match || query) {
    history.replaceState(null, '', window.location.pathname);
  }
  // The operations of `text` (fragments left out), each with its name (null when anonymous)
  // and its offset. Comments and strings are blanked first; only top-level words count.
  function operations(text) {
    var clean = String(text || '').replace(/"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*/g, function (m) {
      return m.replace(/[^\n]/g, ' ');
    });
    var found = [], depth = 0, parens = 0, pending = null, match;
    var token = /[{}()]|\b(query|mutation|subscription|fragment)\b(?:\s+([_A-Za-z][_0-9A-Za-z]*))?/g;
    while ((match = token.exec(clean))) {
      var t = match[0];
      if (t === '(') { parens += 1; continue; }
      if (t === ')') { parens -= 1; continue; }
      if (parens > 0) continue;
      if (t === '{') {
        if (depth === 0) { found.push(pending || { kind: 'query', name: null, start: match.index }); pending = null; }
        depth += 1;
      } else if (t === '}') {
        depth -= 1;
      } else if (depth === 0) {
        pending = { kind: match[1], name: match[2] || null, start: match.index };
      }
    }
    return found.filter(function (d) { return d.kind !== 'fragment'; });
  }
  function operationToRun(text, given) {
    var ops = operations(text);
    if (ops.length === 0) return given;
    if (ops.length === 1) return ops[0].name;
    var wrapper = document.querySelector('.graphiql-query-editor .CodeMirror');
    var editor = wrapper && wrapper.CodeMirror;
    if (!editor || editor.getValue() !== text) return given;
    var at = editor.indexFromPos(editor.getCursor());
    var chosen = ops[0];
    ops.forEach(function (op) { if (op.start <= at) chosen = op; });
    return chosen.name === null ? given : chosen.name;
  }
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, { fetcher: fetcher, defaultQuery: defaultQuery, defaultEditorToolsVisibility: true, headers: headers, shouldPersistHeaders: false }));
})();
