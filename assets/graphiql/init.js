// Starts GraphiQL against this server's /graphql. The browser sends the session cookie
// (same origin); a bearer token can be set in GraphiQL's headers tab instead.
(function () {
  // Queries and mutations over HTTP; subscriptions over WebSocket (graphql-transport-ws, with
  // GraphiQL's bundled graphql-ws client). The headers tab's Authorization goes into
  // connection_init; without one, the cookie counts (bff's own origin is allowed).
  var url = new URL('/graphql', window.location.href).toString();
  var fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: url.replace(/^http/, 'ws') });
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
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, { fetcher: fetcher, defaultQuery: defaultQuery, defaultEditorToolsVisibility: true, headers: headers, shouldPersistHeaders: false }));
})();
