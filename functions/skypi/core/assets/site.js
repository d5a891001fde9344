(function () {
  var root = new URL(document.body.dataset.root, location.href);
  root.username = ''; root.password = ''; root.search = ''; root.hash = '';
  var index = root.href.replace(/\/$/, '');
  document.querySelectorAll('.u').forEach(function (e) { e.textContent = index; });
  document.querySelectorAll('.h').forEach(function (e) { e.textContent = root.hostname; });
  var token = new URL(root.href);
  token.username = '__token__'; token.password = 'TOKEN';
  document.querySelectorAll('.t').forEach(function (e) {
    e.textContent = token.href.replace(/\/$/, '');
  });
  token.password = '';
  document.querySelectorAll('.k').forEach(function (e) {
    e.textContent = token.href.replace(/\/$/, '');
  });
  document.querySelectorAll('.nojs').forEach(function (e) { e.hidden = true; });
  document.querySelectorAll('pre > code').forEach(function (code) {
    var button = document.createElement('button');
    button.className = 'copy'; button.type = 'button'; button.textContent = 'Copy';
    button.addEventListener('click', function () {
      navigator.clipboard.writeText(code.textContent).then(function () {
        button.textContent = 'Copied';
        setTimeout(function () { button.textContent = 'Copy'; }, 1500);
      });
    });
    code.parentNode.appendChild(button);
  });
  var box = document.getElementById('q');
  if (!box) return;
  document.getElementById('search').hidden = false;
  var list = document.getElementById('hits'), projects = null;
  function show() {
    var q = box.value.trim().toLowerCase();
    list.textContent = '';
    if (!q || !projects) return;
    projects.filter(function (p) {
      return p.name.toLowerCase().indexOf(q) !== -1 ||
        (p._summary || '').toLowerCase().indexOf(q) !== -1;
    }).slice(0, 50).forEach(function (p) {
      var li = document.createElement('li'), a = document.createElement('a');
      var normalized = p.name.replace(/[-_.]+/g, '-').toLowerCase();  // PEP 503
      a.href = new URL('project/' + encodeURIComponent(normalized) + '/', root);
      a.textContent = p.name;
      li.appendChild(a);
      if (p._summary) li.appendChild(document.createTextNode(' \u2014 ' + p._summary));
      list.appendChild(li);
    });
    if (!list.children.length) list.textContent = 'No project matches.';
  }
  box.addEventListener('input', show);
  fetch(new URL('simple/', root), {headers: {Accept: 'application/vnd.pypi.simple.v1+json'}})
    .then(function (r) { return r.json(); })
    .then(function (doc) { projects = doc.projects; show(); });
})();
